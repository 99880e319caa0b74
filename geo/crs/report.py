"""Reports a surveyor can file: one per fit, one per database migration. Markdown here; a
self-contained HTML page (report_html.py) when the report file ends in .html."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def is_html(path: str | Path) -> bool:
    return Path(path).suffix.lower() in (".html", ".htm")


def fit_report_for(path: str | Path, doc: dict[str, Any], points: Any = None) -> str:
    """The fit report in the format the file name asks for; `points` (the ControlPoints the fit
    was made from) lets the HTML page plot the residual vectors at their positions."""
    if is_html(path):
        from geo.crs.report_html import fit_report_html

        return fit_report_html(doc, points)
    return fit_report(doc)


def migration_report_for(path: str | Path, summary: dict[str, Any]) -> str:
    if is_html(path):
        from geo.crs.report_html import migration_report_html

        return migration_report_html(summary)
    return migration_report(summary)

_PARAM_LABELS = {
    "tx_m": "ΔX / tx (m)", "ty_m": "ΔY / ty (m)", "tz_m": "ΔZ / tz (m)",
    "rx_arcsec": "εX / rx (″)", "ry_arcsec": "εY / ry (″)", "rz_arcsec": "εZ / rz (″)", "s_ppm": "m / s (ppm)",
    "scale": "scale factor", "theta_arcsec": "rotation θ (″)",
}

_MODEL_TEXT = {
    "helmert4": "Plane 4-parameter similarity (平面四参数), PROJ 2D Helmert form: "
                "x′ = tx + m(cos θ·x + sin θ·y), y′ = ty + m(−sin θ·x + cos θ·y); x = easting, y = northing.",
    "affine": "Plane 6-parameter affine: x′ = a0 + a1·x + a2·y, y′ = b0 + b1·x + b2·y.",
    "poly2": "Plane second-order polynomial (12 parameters) on coordinates normalised about the centroid.",
    "bursa7": "Bursa-Wolf 7 parameters (布尔莎七参数) on geocentric coordinates, **coordinate-frame convention** "
              "(the matrix of the Chinese guide; EPSG method 1032): X′ = T + (1 + m)·R·X with "
              "R = [[1, εZ, −εY], [−εZ, 1, εX], [εY, −εX, 1]]. For PROJ's `+towgs84` (position vector, EPSG 9606) "
              "negate the three rotations; both forms are given below.",
}


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def fit_report(doc: dict[str, Any]) -> str:
    st = doc["statistics"]
    p = doc["parameters"]
    lines = [
        f"# Coordinate transformation fit: {doc['source']} → {doc['target']} ({doc['model']})",
        "",
        f"- Parameter file sha256: `{doc.get('sha256', '')}`",
        f"- Created: {doc['created']}; control pairs file sha256 `{doc['fitted_from']['pairs_sha256'][:16]}…`",
        f"- Pairs given in {doc['fitted_from']['source']} → {doc['fitted_from']['target']}",
        f"- Model: {_MODEL_TEXT[doc['model']]}",
        "- Method: least squares; a point whose residual (predicted by a fit without it) exceeds 3σ of the "
        "position is rejected and the model refitted, worst first; check points never enter the fit.",
        "",
        "## Parameters",
        "",
        "| parameter | value |" if doc["model"] != "bursa7" else "| parameter | coordinate frame | position vector |",
        "| --- | --- |" if doc["model"] != "bursa7" else "| --- | --- | --- |",
    ]
    for k, v in p.items():
        if doc["model"] == "bursa7":
            lines.append(f"| {_PARAM_LABELS.get(k, k)} | {v:.6f} | {doc['position_vector'][k]:.6f} |")
        elif isinstance(v, list):
            lines.append(f"| {k} | {', '.join(f'{c:.9g}' for c in v)} |")
        else:
            lines.append(f"| {_PARAM_LABELS.get(k, k)} | {v:.10g} |")
    if doc["model"] == "helmert4":
        lines.append(f"| scale (ppm) | {(p['scale'] - 1) * 1e6:.4f} |")
    lines += [
        "",
        f"PROJ pipeline (source → target): `{doc['proj_pipeline'] or 'none: applied by numpy only'}`",
        "",
        f"Area of validity (source system, padded bbox of control points): {', '.join(f'{v:.6f}' for v in doc['area']['source'])}",
        "",
        "## Accuracy",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| control points given / used | {st['n_control']} / {st['n_used']} |",
        f"| rejected (3σ) | {', '.join(st['rejected']) or 'none'} |",
        f"| degrees of freedom | {st['dof']} |",
        f"| σ0 per coordinate (m) | {_fmt(st['sigma0_m'])} |",
        f"| check points | {st['check']['n']} |",
        f"| check RMSE (m) | {_fmt(st['check']['rmse_m'])} |",
        f"| check maximum (m) | {_fmt(st['check']['max_m'])} |",
        "",
        "## Residuals of the control points used (m)",
        "",
        "| id | v | ‖v‖ |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {r['id']} | {', '.join(f'{c:+.4f}' for c in r['v_m'])} | {r['norm_m']:.4f} |" for r in st["residuals"]]
    if st["rejected_residuals"]:
        lines += ["", "## Rejected points (residual under the final fit, m)", "", "| id | ‖v‖ |", "| --- | --- |"]
        lines += [f"| {k} | {v:.4f} |" for k, v in st["rejected_residuals"].items()]
    if st["check"]["points"]:
        lines += ["", "## Check points (m)", "", "| id | ‖v‖ |", "| --- | --- |"]
        lines += [f"| {c['id']} | {c['norm_m']:.4f} |" for c in st["check"]["points"]]
    lines += precision_lines(doc)
    if doc["model"] == "bursa7" and not heights_given(doc):
        lines += ["", "> No ellipsoidal heights were given: the fit minimises horizontal residuals. Over a city the "
                  "scale and the translations are then weakly determined (they trade against height); the "
                  "horizontal result is sound, the individual parameters are not meaningful. Prefer helmert4 for "
                  "city-size areas, as the national guide does."]
    return "\n".join(lines) + "\n"


def heights_given(doc: dict[str, Any]) -> bool:
    """Whether the bursa7 fit had target heights: stated by newer files, else from dof = dim * n - 7."""
    st = doc["statistics"]
    if st.get("heights") is not None:
        return bool(st["heights"])
    return bool(st["dof"] + 7 == 3 * st["n_used"])


def param_value(doc: dict[str, Any], name: str) -> float:
    """A stored parameter by its precision name ('tx_m', or 'cx[3]' for poly2's lists)."""
    if name.endswith("]"):
        key, i = name[:-1].split("[")
        return float(doc["parameters"][key][int(i)])
    return float(doc["parameters"][name])


def precision_warnings(doc: dict[str, Any]) -> list[str]:
    return list(doc["statistics"].get("precision", {}).get("warnings", []))


def _matrix_lines(corr: dict[str, Any]) -> list[str]:
    names, m = corr["names"], corr["matrix"]
    lines = ["| r | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for n, row in zip(names, m, strict=True):
        lines.append(f"| {n} | " + " | ".join(f"**{v:+.3f}**" if abs(v) > 0.9 and a != n else f"{v:+.3f}"
                                               for a, v in zip(names, row, strict=True)) + " |")
    return lines


def precision_lines(doc: dict[str, Any]) -> list[str]:
    pr = doc["statistics"].get("precision")
    if not pr:
        return []
    c = pr["centred"]
    lines = ["", "## Precision of the parameters", "",
             f"Standard errors σ0·√diag((JᵀJ)⁻¹), observations: {pr['observations']}; correlations above "
             f"{pr['threshold']} in bold.", "", "| parameter | value | standard error |", "| --- | --- | --- |"]
    lines += [f"| {_PARAM_LABELS.get(n, n)} | {param_value(doc, n):.10g} | {_fmt(se, 6)} |" for n, se in pr["std_error"].items()]
    lines += ["", "Correlations of the stored parameters:", "", *_matrix_lines(pr["correlation"])]
    if c["names"] != pr["correlation"]["names"]:
        lines += ["", f"The same fit with the translations taken at the centroid of the control points "
                      f"({', '.join(f'{v:.3f}' for v in c['centroid'])}):", "",
                  "| parameter | value | standard error |", "| --- | --- | --- |"]
        lines += [f"| {n} | {v:.10g} | {_fmt(c['std_error'][n], 6)} |" for n, v in zip(c["names"], c["values"], strict=True)]
        lines += ["", *_matrix_lines(c["correlation"])]
    lines += [*[f"\n> **Warning:** {w}" for w in pr["warnings"]], *[f"\n- {n}" for n in pr["notes"]]]
    return lines


def migration_report(summary: dict[str, Any]) -> str:
    lines = [
        f"# Database coordinate migration: {summary['action']}",
        "",
        f"- Target system: {summary['target']}; parameters: {summary.get('params') or 'none (exact conversion)'}",
        f"- Migration id: {summary.get('migration_id', '—')}; started {summary.get('started', '—')}",
        f"- Transform path: {summary.get('path', '—')}",
        f"- Outcome: **{summary['outcome']}**",
        f"- Round-trip tolerance: {_fmt(summary.get('tol_m'), 6)} m; total time {_fmt(summary.get('elapsed_s'), 2)} s",
        *[f"\n> **Warning:** {w}" for w in summary.get("warnings", [])],
        "",
        "| table.column | rows | SRID before → after | invalid | max round-trip error (m) | bbox before | bbox after | time (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in summary["columns"]:
        lines.append(
            f"| {c['table']}.{c['column']} | {c['rows']} | {c['srid_before']} → {c.get('srid_after', '—')} | "
            f"{c.get('invalid', '—')} | {_fmt(c.get('roundtrip_max_m'), 6)} | {_bbox(c.get('bbox_before'))} | "
            f"{_bbox(c.get('bbox_after'))} | {_fmt(c.get('seconds'), 2)} |")
    checks = [(c, k) for c in summary["columns"] for k in c.get("checks", [])]
    if checks:
        lines += ["", "| table.column | check | value | limit | result |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {c['table']}.{c['column']} | {k['check']} | {_fmt(k['value'], 6)} | {k['limit']} | "
                  f"{'pass' if k['ok'] else '**FAIL**'} |" for c, k in checks]
    if summary.get("notes"):
        lines += ["", *[f"- {n}" for n in summary["notes"]]]
    return "\n".join(lines) + "\n"


def _bbox(b: Any) -> str:
    if not b:
        return "—"
    return ", ".join(f"{v:.6f}" for v in b)
