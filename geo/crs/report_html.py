"""Self-contained HTML reports: inline CSS and inline SVG only. No scripts, fonts, images or links
to fetch (the command centre's network is closed; a Content-Security-Policy of default-src 'none'
says so to the browser too). Every value from the data goes through html.escape.

The fit page shows the model, parameters with units and convention, the accuracy figures, every
point's residual, and a plot of the residual vectors (exaggerated, with scale bars) over the
model's area of validity. The migration page shows the columns, checks, tolerance and timings.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

import numpy as np

from geo.crs.report import _MODEL_TEXT, _PARAM_LABELS, heights_given, param_value

M_PER_DEG = 111_320.0

_CSS = """
body{font:14px/1.45 system-ui,'Noto Sans CJK SC',sans-serif;color:#1b1f24;margin:24px auto;max-width:1040px;padding:0 16px}
h1{font-size:21px;margin:0 0 4px}h2{font-size:16px;margin:26px 0 8px;border-bottom:1px solid #ccd;padding-bottom:3px}
table{border-collapse:collapse;margin:6px 0 10px}th,td{border:1px solid #ccd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.n{text-align:right;font-variant-numeric:tabular-nums;font-family:ui-monospace,monospace}
code{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
.ok{color:#11691f;font-weight:600}.fail{color:#b00020;font-weight:700}.note{background:#fff7e0;border-left:4px solid #e0a800;padding:6px 10px}.warning{border-left-color:#b00020;font-weight:600}td.warn{color:#b00020;font-weight:700}
tr.rejected td{background:#fdecee}tr.check td{background:#eef8ef}
.sign{margin-top:30px;display:grid;grid-template-columns:1fr 1fr 1fr;gap:24px}.sign div{border-top:1px solid #333;padding-top:4px}
svg{border:1px solid #ccd;background:#fff}svg text{font:11px sans-serif}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}table,svg{break-inside:avoid}}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'"
_ROLE_COLOUR = {"control": "#1f5fbf", "check": "#17803a", "rejected": "#c4001d"}
_UNIT = {"tx_m": "m", "ty_m": "m", "tz_m": "m", "rx_arcsec": "″ (arc-second)", "ry_arcsec": "″ (arc-second)",
         "rz_arcsec": "″ (arc-second)", "s_ppm": "ppm", "scale": "factor", "theta_arcsec": "″ (arc-second)",
         "a0": "m", "b0": "m", "a1": "1", "a2": "1", "b1": "1", "b2": "1", "origin_source": "m", "origin_target": "m",
         "norm_m": "m", "cx": "m", "cy": "m"}


def e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def num(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—" if v is None else e(v)
    if isinstance(v, bool) or not isinstance(v, int | float):
        return e(v)
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _inline_md(text: str) -> str:
    """The shared model descriptions carry **bold** and `code`: escape, then render those two."""
    t = e(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", t)


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{e(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def table(head: list[str] | None, rows: list[str]) -> str:
    h = "<thead><tr>" + "".join(f"<th>{e(x)}</th>" for x in head) + "</tr></thead>" if head else ""
    return f"<table>{h}<tbody>\n" + "\n".join(rows) + "\n</tbody></table>"


def td(v: Any, digits: int = 4, key: str | None = None) -> str:
    numeric = isinstance(v, int | float) and not isinstance(v, bool)
    attrs = (' class="n"' if numeric else "") + (f' id="{e(key)}"' if key else "")
    return f"<td{attrs}>{num(v, digits)}</td>"


def _rms_max(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    a = np.asarray(values, dtype=float)
    return float(np.sqrt(np.mean(a**2))), float(a.max())


# --- the fit -----------------------------------------------------------------------------------

def residual_vectors(doc: dict[str, Any], points: Any) -> list[dict[str, Any]] | None:
    """Every point (control used, rejected, check) with its position in the model's source system
    (plot metres about the area's centre) and its horizontal residual (east, north) in metres,
    recomputed from the parameters exactly as the fit computes it. None when `points` is missing
    or is not the set the fit was made from."""
    from geo.crs.models import PLANE_MODELS, bursa_apply, cart_to_geodetic, geodetic_to_cart, plane_apply
    from geo.crs.systems import get_system
    from geo.crs.transform import proj_transform

    if points is None:
        return None
    st = doc["statistics"]
    roles = {r["id"]: "control" for r in st["residuals"]} | {r: "rejected" for r in st["rejected"]}
    roles |= {c["id"]: "check" for c in st["check"]["points"]}
    ids = [str(i) for i in points.ids]
    if set(ids) != set(roles):
        return None
    src, dst, p, model = points.src, points.dst, doc["parameters"], doc["model"]
    area = doc["area"]["source"]
    if model in PLANE_MODELS:
        px, py = plane_apply(model, p, src[:, 0], src[:, 1])
        ve, vn = dst[:, 0] - px, dst[:, 1] - py
        x, y = src[:, 0] - (area[0] + area[2]) / 2, src[:, 1] - (area[1] + area[3]) / 2
        norm = np.hypot(ve, vn)
    else:
        def geographic(alias: str, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            s = get_system(alias)
            if not s.projected:
                return xy[:, 0], xy[:, 1]
            g = get_system(s.geographic)
            assert s.epsg is not None and g.epsg is not None
            return proj_transform(s.epsg, g.epsg, xy[:, 0], xy[:, 1])

        (ls, bs), (ld, bd) = geographic(doc["fitted_from"]["source"], src), geographic(doc["fitted_from"]["target"], dst)
        ell_s, ell_d = doc["ellipsoids"]["source"], doc["ellipsoids"]["target"]
        pred = bursa_apply(geodetic_to_cart(ls, bs, np.nan_to_num(src[:, 2]), *ell_s), p)
        h = dst[:, 2] if np.isfinite(dst[:, 2]).all() else cart_to_geodetic(pred, *ell_d)[2]
        d = geodetic_to_cart(ld, bd, h, *ell_d) - pred  # geocentric, as the fit's residuals
        lam, phi = np.radians(ld), np.radians(bd)
        ve = -np.sin(lam) * d[0] + np.cos(lam) * d[1]
        vn = -np.sin(phi) * np.cos(lam) * d[0] - np.sin(phi) * np.sin(lam) * d[1] + np.cos(phi) * d[2]
        norm = np.linalg.norm(d, axis=0)
        lon0, lat0 = (area[0] + area[2]) / 2, (area[1] + area[3]) / 2
        x, y = (ls - lon0) * M_PER_DEG * np.cos(np.radians(lat0)), (bs - lat0) * M_PER_DEG
    return [{"id": i, "role": roles[i], "x": float(x[k]), "y": float(y[k]), "ve": float(ve[k]), "vn": float(vn[k]),
             "norm": float(norm[k])} for k, i in enumerate(ids)]


def _area_m(doc: dict[str, Any]) -> tuple[float, float, float, float]:
    a = doc["area"]["source"]
    if doc["model"] != "bursa7":
        w, h = a[2] - a[0], a[3] - a[1]
        return -w / 2, -h / 2, w / 2, h / 2
    k = M_PER_DEG * math.cos(math.radians((a[1] + a[3]) / 2))
    w, h = (a[2] - a[0]) * k, (a[3] - a[1]) * M_PER_DEG
    return -w / 2, -h / 2, w / 2, h / 2


def nice(v: float) -> float:
    """The largest 1, 2 or 5 x 10^k not above v."""
    if v <= 0:
        return 1.0
    k = 10 ** math.floor(math.log10(v))
    return next(m * k for m in (5, 2, 1) if m * k <= v * (1 + 1e-9))


def _length(m: float) -> str:
    if m >= 1000:
        return f"{m / 1000:g} km"
    if m >= 1:
        return f"{m:g} m"
    return f"{m * 1000:g} mm"


def _factor(v: float) -> str:
    return f"{v:,.0f}" if v >= 1 else f"{v:g}"


def residual_svg(doc: dict[str, Any], pts: list[dict[str, Any]], width: int = 760) -> str:
    """Residual vectors at the points, exaggerated by a stated factor, over the area of validity."""
    ax0, ay0, ax1, ay1 = _area_m(doc)
    xs = [p["x"] for p in pts] + [ax0, ax1]
    ys = [p["y"] for p in pts] + [ay0, ay1]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    pad = 0.04 * max(x1 - x0, y1 - y0, 1.0)
    x0, x1, y0, y1 = x0 - pad, x1 + pad, y0 - pad, y1 + pad
    margin, legend = 14, 74
    plot_w = width - 2 * margin
    s = min(plot_w / (x1 - x0), 560 / (y1 - y0))  # px per metre of the map
    plot_h = (y1 - y0) * s
    height = int(plot_h + 2 * margin + legend)

    def X(v: float) -> float:
        return margin + (v - x0) * s

    def Y(v: float) -> float:
        return margin + (y1 - v) * s

    typical = max([p["norm"] for p in pts if p["role"] != "rejected"] or [0.0]) or 1e-3
    exag = nice(0.07 * plot_w / (typical * s))  # the longest accepted arrow: about 7% of the width
    cap = 0.21 * plot_w
    out = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'role="img" aria-label="residual vectors" data-exaggeration="{exag:g}">',
           "<defs>" + "".join(f'<marker id="arrow-{r}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
                              f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>'
                              for r, c in _ROLE_COLOUR.items()) + "</defs>",
           f'<rect class="area" x="{X(ax0):.1f}" y="{Y(ay1):.1f}" width="{(ax1 - ax0) * s:.1f}" height="{(ay1 - ay0) * s:.1f}" '
           'fill="#f3f6fb" stroke="#7a8799" stroke-dasharray="6 4"/>',
           f'<text x="{X(ax0) + 4:.1f}" y="{Y(ay1) + 13:.1f}" fill="#55606e">area of validity (padded bbox of the control points)</text>']
    for p in pts:
        c, cx, cy = _ROLE_COLOUR[p["role"]], X(p["x"]), Y(p["y"])
        dx, dy = p["ve"] * exag * s, -p["vn"] * exag * s
        length = math.hypot(dx, dy)
        clipped = length > cap
        if clipped:
            dx, dy = dx * cap / length, dy * cap / length
        dash = ' stroke-dasharray="4 2"' if clipped else ""
        tip = (f'{e(p["id"])} ({p["role"]}): ‖v‖ {p["norm"]:.4f} m, east {p["ve"]:+.4f} m, north {p["vn"]:+.4f} m'
               + (" (arrow shortened)" if clipped else ""))
        out.append(f'<g class="point {p["role"]}"><title>{tip}</title>'
                   f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.6" fill="{c}"/>'
                   f'<line class="residual" data-id="{e(p["id"])}" data-role="{p["role"]}" x1="{cx:.1f}" y1="{cy:.1f}" '
                   f'x2="{cx + dx:.1f}" y2="{cy + dy:.1f}" stroke="{c}" stroke-width="1.4"'
                   f'{dash} marker-end="url(#arrow-{p["role"]})"/>'
                   + (f'<text x="{cx + dx + 3:.1f}" y="{cy + dy:.1f}" fill="{c}">{e(p["id"])} {p["norm"]:.3f} m</text>'
                      if p["role"] == "rejected" else "") + "</g>")
    # scale bars: one for the map, one for the residuals at the stated exaggeration
    by = plot_h + 2 * margin + 16
    map_m = nice(plot_w / 5 / s)
    res_m = nice(110 / (exag * s))
    out += [f'<g class="scalebar map"><line x1="{margin}" y1="{by:.1f}" x2="{margin + map_m * s:.1f}" y2="{by:.1f}" '
            f'stroke="#333" stroke-width="3"/><text x="{margin + map_m * s + 6:.1f}" y="{by + 4:.1f}">'
            f"map: {_length(map_m)}</text></g>",
            f'<g class="scalebar residual"><line x1="{margin}" y1="{by + 22:.1f}" x2="{margin + res_m * exag * s:.1f}" '
            f'y2="{by + 22:.1f}" stroke="#c4001d" stroke-width="3"/><text x="{margin + res_m * exag * s + 6:.1f}" '
            f'y="{by + 26:.1f}">residual: {_length(res_m)} (arrows exaggerated ×{_factor(exag)})</text></g>']
    lx = width * 0.56
    for k, (r, c) in enumerate(_ROLE_COLOUR.items()):
        out.append(f'<g class="legend"><circle cx="{lx + k * 110:.1f}" cy="{by + 11:.1f}" r="4" fill="{c}"/>'
                   f'<text x="{lx + k * 110 + 8:.1f}" y="{by + 15:.1f}">{r} point</text></g>')
    out.append(f'<text x="{lx:.1f}" y="{by + 40:.1f}" fill="#55606e">rejected arrows longer than {cap:.0f} px are shortened '
               "(dashed)</text></svg>")
    return "\n".join(out)


def _param_rows(doc: dict[str, Any]) -> list[str]:
    p, rows = doc["parameters"], []
    pv = doc.get("position_vector") or {}
    for k, v in p.items():
        label = _PARAM_LABELS.get(k, k)
        if isinstance(v, list):
            val = f'<td class="n" data-param="{e(k)}">{e(", ".join(f"{c:.9g}" for c in v))}</td>'
        else:
            val = f'<td class="n" data-param="{e(k)}">{e(f"{v:.10g}")}</td>'
        extra = f'<td class="n" data-pv="{e(k)}">{e(f"{pv[k]:.6f}")}</td>' if k in pv else ""
        rows.append(f"<tr><td>{e(label)}</td>{val}{extra}<td>{e(_UNIT.get(k, ''))}</td></tr>")
    if doc["model"] == "helmert4":
        rows.append(f'<tr><td>scale (ppm)</td><td class="n" data-param="scale_ppm">{(p["scale"] - 1) * 1e6:.4f}</td>'
                    "<td>ppm = (scale − 1) × 10⁶</td></tr>")
    return rows


def _matrix_html(corr: dict[str, Any]) -> str:
    names = corr["names"]
    rows = [f"<tr><th>{e(n)}</th>" + "".join(
        f'<td class="n{" warn" if abs(v) > 0.9 and a != n else ""}">{v:+.3f}</td>' for a, v in zip(names, row, strict=True))
        + "</tr>" for n, row in zip(names, corr["matrix"], strict=True)]
    return table(["r", *names], rows)


def _precision_html(doc: dict[str, Any]) -> list[str]:
    pr = doc["statistics"].get("precision")
    if not pr:
        return []
    c = pr["centred"]
    out = ["<h2>Precision of the parameters</h2>",
           f"<p>Standard errors σ0·√diag((JᵀJ)⁻¹); observations: {e(pr['observations'])}. Correlations above "
           f"{e(pr['threshold'])} are marked.</p>",
           *[f'<p class="note warning">Warning: {e(w)}</p>' for w in pr["warnings"]],
           table(["parameter", "value", "standard error"], [
               f'<tr><td>{e(_PARAM_LABELS.get(n, n))}</td><td class="n">{e(f"{param_value(doc, n):.10g}")}</td>'
               f'<td class="n" data-se="{e(n)}">{num(se, 6)}</td></tr>' for n, se in pr["std_error"].items()]),
           "<p>Correlations of the stored parameters:</p>", _matrix_html(pr["correlation"])]
    if c["names"] != pr["correlation"]["names"]:
        out += [f"<p>The same fit with the translations taken at the centroid of the control points "
                f"({e(', '.join(f'{v:.3f}' for v in c['centroid']))}):</p>",
                table(["parameter", "value", "standard error"], [
                    f'<tr><td>{e(n)}</td><td class="n">{e(f"{v:.10g}")}</td><td class="n">{num(c["std_error"][n], 6)}</td></tr>'
                    for n, v in zip(c["names"], c["values"], strict=True)]),
                _matrix_html(c["correlation"])]
    out += [f'<p class="note">{e(n)}</p>' for n in pr["notes"]]
    return out


def fit_report_html(doc: dict[str, Any], points: Any = None) -> str:
    st, model = doc["statistics"], doc["model"]
    control_rmse, control_max = _rms_max([r["norm_m"] for r in st["residuals"]])
    chk = st["check"]
    convention = ("coordinate frame (EPSG method 1032, the matrix of the Chinese guide); the position-vector form "
                  "(EPSG 9606, PROJ +towgs84) has the three rotations negated and is given beside it"
                  if model == "bursa7" else "x = easting, y = northing, in metres of the projected systems")
    pts = residual_vectors(doc, points)
    by_id = {p["id"]: p for p in pts} if pts else {}
    body = [f"<h1>Coordinate transformation fit: {e(doc['source'])} → {e(doc['target'])} ({e(model)})</h1>",
            "<table>",
            f"<tr><th>model</th><td>{_inline_md(_MODEL_TEXT[model])}</td></tr>",
            f'<tr><th>convention</th><td id="convention">{e(doc.get("convention", ""))}: {e(convention)}</td></tr>',
            f"<tr><th>control pairs given in</th><td>{e(doc['fitted_from']['source'])} → {e(doc['fitted_from']['target'])}</td></tr>",
            f'<tr><th>parameter file sha256</th><td><code>{e(doc.get("sha256", ""))}</code></td></tr>',
            f'<tr><th>pairs file sha256</th><td><code>{e(doc["fitted_from"]["pairs_sha256"])}</code></td></tr>',
            f"<tr><th>created</th><td>{e(doc['created'])}</td></tr>",
            "<tr><th>method</th><td>least squares; a point whose residual, predicted by a fit without it, exceeds 3σ of a "
            "position is rejected and the model refitted, worst first; check points never enter the fit.</td></tr>",
            "</table>",
            "<h2>Accuracy</h2>",
            table(["measure", "value"], [
                f"<tr><td>control points given</td>{td(st['n_control'], key='n_control')}</tr>",
                f"<tr><td>control points used</td>{td(st['n_used'], key='n_used')}</tr>",
                f"<tr><td>rejected (3σ)</td>{td(len(st['rejected']), key='n_rejected')}</tr>",
                f"<tr><td>check points</td>{td(chk['n'], key='n_check')}</tr>",
                f"<tr><td>degrees of freedom</td>{td(st['dof'], key='dof')}</tr>",
                f"<tr><td>σ0 per coordinate (m)</td>{td(st['sigma0_m'], key='sigma0_m')}</tr>",
                f"<tr><td>control RMSE of a position (m)</td>{td(control_rmse, key='control_rmse_m')}</tr>",
                f"<tr><td>control maximum (m)</td>{td(control_max, key='control_max_m')}</tr>",
                f"<tr><td>check RMSE (m)</td>{td(chk['rmse_m'], key='check_rmse_m')}</tr>",
                f"<tr><td>check maximum (m)</td>{td(chk['max_m'], key='check_max_m')}</tr>"]),
            "<h2>Parameters</h2>",
            table(["parameter", "coordinate frame", "position vector", "unit"] if model == "bursa7"
                  else ["parameter", "value", "unit"], _param_rows(doc)),
            f"<p>PROJ pipeline (source → target): <code>{e(doc['proj_pipeline'] or 'none: applied by numpy only')}</code></p>",
            f"<p>Area of validity ({e(doc['source'])}, padded bbox of the control points used): "
            f"<span id=\"area\">{e(', '.join(f'{v:.6f}' for v in doc['area']['source']))}</span>; points outside it are refused.</p>"]
    body += _precision_html(doc)
    if model == "bursa7" and not heights_given(doc):
        body.append('<p class="note">No ellipsoidal heights were given: the fit minimises horizontal residuals. Over a city '
                    "the scale and the translations are then weakly determined (they trade against height); the horizontal "
                    "result is sound, the individual parameters are not meaningful. Prefer helmert4 for city-size areas, as "
                    "the national guide does.</p>")
    if pts:
        body += ["<h2>Residual vectors</h2>",
                 "<p>Residual = given target − model(source), at each point's source position; east and north components."
                 + (" The table's ‖v‖ is the fit's geocentric residual." if model == "bursa7" else "") + "</p>",
                 residual_svg(doc, pts)]
    rej = st["rejected_residuals"]
    body.append("<h2>Rejected points</h2>")
    if rej:
        body.append(table(["id", "‖v‖ under the final fit (m)", "east (m)", "north (m)"], [
            f'<tr class="rejected" data-id="{e(k)}"><td>{e(k)}</td>{td(v)}'
            + (f"{td(by_id[k]['ve'])}{td(by_id[k]['vn'])}" if k in by_id else "<td>—</td><td>—</td>") + "</tr>"
            for k, v in rej.items()]))
    else:
        body.append("<p>none</p>")
    rows = []
    norms = ([(r["id"], "control", r["norm_m"]) for r in st["residuals"]] + [(k, "rejected", v) for k, v in rej.items()]
             + [(c["id"], "check", c["norm_m"]) for c in chk["points"]])
    for pid, role, n in norms:
        p = by_id.get(pid)
        cells = f"{td(p['ve'])}{td(p['vn'])}" if p else "<td>—</td><td>—</td>"
        rows.append(f'<tr class="{role}" data-id="{e(pid)}" data-role="{role}"><td>{e(pid)}</td><td>{role}</td>{cells}'
                    f'<td class="n" data-norm="{n!r}">{n:.4f}</td></tr>')
    body += ["<h2>Residuals of every point (m)</h2>",
             table(["id", "role", "east", "north", "‖v‖"], rows),
             '<div class="sign"><div>computed by</div><div>checked by</div><div>approved (date)</div></div>']
    return page(f"Fit {doc['source']} → {doc['target']} ({model})", "\n".join(body))


# --- the migration -----------------------------------------------------------------------------

def _bbox(b: Any) -> str:
    return "—" if not b else e(", ".join(f"{v:.6f}" for v in b))


def migration_report_html(summary: dict[str, Any]) -> str:
    outcome = str(summary["outcome"])
    cls = "fail" if outcome.startswith("FAILED") else "ok"
    head = table(None, [
        f"<tr><th>action</th><td>{e(summary['action'])}</td></tr>",
        f"<tr><th>target system</th><td>{e(summary['target'])}</td></tr>",
        f"<tr><th>parameters</th><td>{e(summary.get('params') or 'none (exact conversion)')}</td></tr>",
        f"<tr><th>migration id</th><td>{e(summary.get('migration_id', '—'))}</td></tr>",
        f"<tr><th>started</th><td>{e(summary.get('started', '—'))}</td></tr>",
        f"<tr><th>transform path</th><td>{e(summary.get('path', '—'))}</td></tr>",
        f"<tr><th>round-trip tolerance (m)</th>{td(summary.get('tol_m'), 6, 'tol_m')}</tr>",
        f"<tr><th>total time (s)</th>{td(summary.get('elapsed_s'), 2, 'elapsed_s')}</tr>",
        f'<tr><th>outcome</th><td id="outcome" class="{cls}">{e(outcome)}</td></tr>'])
    cols = summary["columns"]
    col_rows = [
        f'<tr data-column="{e(c["table"])}.{e(c["column"])}"><td>{e(c["table"])}.{e(c["column"])}</td><td>{e(c.get("pk", "—"))}</td>'
        f'{td(c.get("rows"))}<td>{e(c["srid_before"])} → {e(c.get("srid_after", "—"))}</td>{td(c.get("invalid", "—"))}'
        f'{td(c.get("roundtrip_max_m"), 6)}<td>{_bbox(c.get("bbox_before"))}</td><td>{_bbox(c.get("bbox_after"))}</td>'
        f'{td(c.get("seconds"), 2)}</tr>' for c in cols]
    check_rows = [
        f'<tr data-column="{e(c["table"])}.{e(c["column"])}"><td>{e(c["table"])}.{e(c["column"])}</td><td>{e(k["check"])}</td>'
        f'{td(k["value"], 6)}<td>{e(k["limit"])}</td><td class="{"ok" if k["ok"] else "fail"}">{"pass" if k["ok"] else "FAIL"}</td></tr>'
        for c in cols for k in c.get("checks", [])]
    deps = [f"<li>{e(c['table'])}.{e(d['column'])} = <code>{e(d['expr'])}</code> (dropped and re-added with "
            f"{len(d.get('indexes', []))} index(es))</li>" for c in cols for d in c.get("dependants", [])]
    body = [f"<h1>Database coordinate migration: {e(summary['action'])}</h1>", head,
            *[f'<p class="note warning">Warning: {e(w)}</p>' for w in summary.get("warnings", [])], "<h2>Columns</h2>",
            table(["table.column", "primary key", "rows", "SRID before → after", "invalid", "max round-trip error (m)",
                   "bbox before", "bbox after", "time (s)"], col_rows),
            "<h2>Checks</h2>",
            table(["table.column", "check", "value", "limit", "result"], check_rows) if check_rows
            else "<p>none run (a dry run changes nothing and checks nothing)</p>"]
    if deps:
        body += ["<h2>Generated columns recomputed by PostgreSQL</h2>", "<ul>", *deps, "</ul>"]
    if summary.get("notes"):
        body += ["<h2>Notes</h2>", "<ul>", *[f"<li>{e(n)}</li>" for n in summary["notes"]], "</ul>"]
    body.append('<div class="sign"><div>run by</div><div>checked by</div><div>approved (date)</div></div>')
    return page(f"Migration {summary['action']} to {summary['target']}", "\n".join(body))
