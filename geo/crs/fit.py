"""Least-squares fitting of a transformation model on coincident control points.

Procedure (after the national guide for converting survey results to CGCS2000): fit on the
control points; a point whose residual exceeds 3 sigma is rejected and the model refitted, worst
point first; the held-out check points (never used in the fit) give an independent RMSE and
maximum. Sigma is judged on a fit WITHOUT the candidate point (its prediction residual), so one
gross error cannot hide itself, or a second one, by inflating sigma0.
"""

from __future__ import annotations

import csv
import io
import numbers
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from geo.crs.models import (
    ARCSEC,
    FORMAT,
    MODELS,
    PLANE_MODELS,
    bursa_apply,
    bursa_pipeline,
    cart_to_geodetic,
    geodetic_to_cart,
    plane_apply,
    plane_pipeline,
    poly2_terms,
    to_position_vector,
)
from geo.crs.precision import precision
from geo.crs.systems import CrsError, CrsSystem, get_system

# Unknowns per model, and the points needed to solve it (+1 for redundancy, so sigma0 exists).
UNKNOWNS = {"helmert4": 4, "affine": 6, "poly2": 12, "bursa7": 7}
MIN_POINTS = {"helmert4": 3, "affine": 4, "poly2": 7, "bursa7": 4}

# (semi-major axis in metres, inverse flattening) of the source and the target ellipsoid.
Ellipsoids = tuple[tuple[float, float], tuple[float, float]]


class FitError(CrsError):
    pass


@dataclass
class ControlPoints:
    ids: list[str]
    src: np.ndarray  # (n, 3): x, y, h (h = nan when not given)
    dst: np.ndarray
    check: np.ndarray  # bool: held out
    sha256: str = ""


def read_pairs(path: str | Path, check_every: int = 5) -> ControlPoints:
    """CSV columns: id, x_src, y_src, [h_src], x_dst, y_dst, [h_dst], [role = control|check].
    Without a role column every k-th point is held out as a check point (k = check_every; 0: none)."""
    import hashlib

    try:
        raw = Path(path).read_bytes()
        text = raw.decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise FitError(f"cannot read control points {path}: {e}".replace("\n", " ")) from None
    need = {"x_src", "y_src", "x_dst", "y_dst"}
    if not rows or not need <= set(rows[0]):
        raise FitError(f"{path}: need columns id,x_src,y_src,x_dst,y_dst[,h_src,h_dst][,role]")
    try:
        def col(name: str) -> np.ndarray:
            return np.array([float(r[name]) if r.get(name) not in (None, "") else np.nan for r in rows])
        src = np.column_stack([col("x_src"), col("y_src"), col("h_src")])
        dst = np.column_stack([col("x_dst"), col("y_dst"), col("h_dst")])
    except ValueError as e:
        raise FitError(f"{path}: a coordinate is not a number ({e})") from None
    if not np.isfinite(src[:, :2]).all() or not np.isfinite(dst[:, :2]).all():
        raise FitError(f"{path}: a control point lacks a coordinate")
    ids = [r.get("id") or str(i + 1) for i, r in enumerate(rows)]
    if "role" in rows[0]:
        roles = [(r["role"] or "control").strip().lower() for r in rows]
        if bad := sorted(set(roles) - {"control", "check"}):
            raise FitError(f"{path}: role must be control or check, not {bad[0]!r}")
        check = np.array([r == "check" for r in roles])
    else:
        check = np.zeros(len(rows), dtype=bool)
        if check_every > 1:
            check[check_every - 1::check_every] = True
    return ControlPoints(ids, src, dst, check, hashlib.sha256(raw).hexdigest())


# --- one least-squares solution per model -----------------------------------------------------

@dataclass
class Solution:
    params: dict[str, Any]
    predict: Any  # callable (n,3 src) -> (n,3 dst-like) in the residual space
    residuals: np.ndarray  # (n, d) metres
    sigma0: float  # per coordinate, metres
    dof: int
    extra: dict[str, Any] = field(default_factory=dict)


def _solve_plane(model: str, s: np.ndarray, d: np.ndarray) -> dict[str, Any]:
    x0, y0 = s[:, 0].mean(), s[:, 1].mean()
    X0, Y0 = d[:, 0].mean(), d[:, 1].mean()
    u, v = s[:, 0] - x0, s[:, 1] - y0
    U, V = d[:, 0] - X0, d[:, 1] - Y0
    n = len(u)
    if model == "helmert4":
        # U = a u + b v + cx ; V = -b u + a v + cy   (a = m cos t, b = m sin t)
        A = np.zeros((2 * n, 4))
        A[:n, 0], A[:n, 1], A[:n, 2] = u, v, 1.0
        A[n:, 0], A[n:, 1], A[n:, 3] = v, -u, 1.0
        a, b, cx, cy = np.linalg.lstsq(A, np.concatenate([U, V]), rcond=None)[0]
        return {"tx_m": X0 + cx - a * x0 - b * y0, "ty_m": Y0 + cy + b * x0 - a * y0,
                "scale": float(np.hypot(a, b)), "theta_arcsec": float(np.arctan2(b, a) / ARCSEC)}
    if model == "affine":
        A = np.column_stack([np.ones(n), u, v])
        ca = np.linalg.lstsq(A, U, rcond=None)[0]
        cb = np.linalg.lstsq(A, V, rcond=None)[0]
        return {"a0": X0 + ca[0] - ca[1] * x0 - ca[2] * y0, "a1": ca[1], "a2": ca[2],
                "b0": Y0 + cb[0] - cb[1] * x0 - cb[2] * y0, "b1": cb[1], "b2": cb[2]}
    # poly2 on coordinates normalised by the spread of the points: a well-conditioned system
    k = float(max(np.abs(u).max(), np.abs(v).max(), 1.0))
    T = poly2_terms(u / k, v / k)
    return {"origin_source": [x0, y0], "origin_target": [X0, Y0], "norm_m": k,
            "cx": np.linalg.lstsq(T, U, rcond=None)[0].tolist(), "cy": np.linalg.lstsq(T, V, rcond=None)[0].tolist()}


def _bursa_solve(xs: np.ndarray, xd: np.ndarray) -> dict[str, float]:
    """Gauss-Newton on X' = T + (1+s) R X with the small-angle coordinate-frame matrix.

    Solved about the centroid (Molodensky-Badekas form, well conditioned over a city) and then
    rewritten as Bursa parameters about the geocentre, which is what the pipeline uses."""
    c_s, c_d = xs.mean(axis=1, keepdims=True), xd.mean(axis=1, keepdims=True)
    ds, dd = xs - c_s, xd - c_d
    q = np.zeros(7)  # t'x t'y t'z rx ry rz (rad) s (unitless)
    n = xs.shape[1]
    for _ in range(10):
        rx, ry, rz, s = q[3], q[4], q[5], q[6]
        r = np.array([[1.0, rz, -ry], [-rz, 1.0, rx], [ry, -rx, 1.0]])
        model = q[:3, None] + (1 + s) * (r @ ds)
        x, y, z = ds
        J = np.zeros((3, n, 7))
        J[0, :, 0] = J[1, :, 1] = J[2, :, 2] = 1.0
        J[1, :, 3], J[2, :, 3] = (1 + s) * z, -(1 + s) * y
        J[0, :, 4], J[2, :, 4] = -(1 + s) * z, (1 + s) * x
        J[0, :, 5], J[1, :, 5] = (1 + s) * y, -(1 + s) * x
        J[:, :, 6] = r @ ds
        scale = np.array([1, 1, 1, 1e-5, 1e-5, 1e-5, 1e-5])  # columns to a common magnitude
        step = np.linalg.lstsq(J.reshape(3 * n, 7) * scale, (dd - model).reshape(-1), rcond=None)[0] * scale
        q += step
        if np.all(np.abs(step[:3]) < 1e-9) and np.all(np.abs(step[3:]) < 1e-15):
            break
    rx, ry, rz, s = q[3], q[4], q[5], q[6]
    r = np.array([[1.0, rz, -ry], [-rz, 1.0, rx], [ry, -rx, 1.0]])
    t = c_d[:, 0] + q[:3] - (1 + s) * (r @ c_s[:, 0])
    return {"tx_m": float(t[0]), "ty_m": float(t[1]), "tz_m": float(t[2]), "rx_arcsec": float(rx / ARCSEC),
            "ry_arcsec": float(ry / ARCSEC), "rz_arcsec": float(rz / ARCSEC), "s_ppm": float(s * 1e6)}


def _fit_once(model: str, src: np.ndarray, dst: np.ndarray, ells: Ellipsoids | None) -> Solution:
    if model in PLANE_MODELS:
        p = _solve_plane(model, src, dst)

        def predict(s: np.ndarray) -> np.ndarray:
            return np.column_stack(plane_apply(model, p, s[:, 0], s[:, 1]))

        res = dst[:, :2] - predict(src)
        dof, dim = 2 * len(src) - UNKNOWNS[model], 2
    else:
        assert ells is not None, f"{model} needs the ellipsoids"
        ell_s, ell_d = ells
        hs = np.nan_to_num(src[:, 2])  # no height given: 0, as the pipeline assumes
        xs = geodetic_to_cart(src[:, 0], src[:, 1], hs, *ell_s)
        has_h = bool(np.isfinite(dst[:, 2]).all())
        hd = dst[:, 2] if has_h else np.zeros(len(dst))
        for _ in range(1 if has_h else 4):
            # Without target heights, take the height the model itself predicts: the fit then
            # minimises the horizontal residuals only, which is what a 2D user sees.
            xd = geodetic_to_cart(dst[:, 0], dst[:, 1], hd, *ell_d)
            p = _bursa_solve(xs, xd)
            if not has_h:
                hd = cart_to_geodetic(bursa_apply(xs, p), *ell_d)[2]

        def predict(s: np.ndarray) -> np.ndarray:
            return bursa_apply(geodetic_to_cart(s[:, 0], s[:, 1], np.nan_to_num(s[:, 2]), *ell_s), p).T

        # residuals in metres, geocentric; for check points the target height is the predicted one
        res = xd.T - predict(src)
        dim = 3 if has_h else 2
        dof = dim * len(src) - UNKNOWNS[model]
    sigma0 = float(np.sqrt(np.sum(res**2) / dof)) if dof > 0 else float("nan")
    return Solution(p, predict, res, sigma0, dof, {"dim": dim})


def _residual_m(model: str, sol: Solution, src: np.ndarray, dst: np.ndarray, ells: Ellipsoids | None) -> np.ndarray:
    """Residual vectors (metres) of arbitrary points under a solution (e.g. check points)."""
    pred = sol.predict(src)
    if model in PLANE_MODELS:
        return dst[:, :2] - pred
    assert ells is not None, f"{model} needs the ellipsoids"
    ell_d = ells[1]
    h = dst[:, 2] if np.isfinite(dst[:, 2]).all() else cart_to_geodetic(pred.T, *ell_d)[2]
    return geodetic_to_cart(dst[:, 0], dst[:, 1], h, *ell_d).T - pred


@dataclass
class FitResult:
    doc: dict[str, Any]
    rejected: list[str]


def fit(points: ControlPoints, model: str, source: str, target: str, pad_fraction: float = 0.1,
        progress: Any = None) -> FitResult:
    """Fit `model` on control points given in systems `source` and `target`; return the parameter
    document (not yet hashed or saved)."""
    if model not in MODELS:
        raise FitError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    s_sys, d_sys = get_system(source), get_system(target)
    src, dst = points.src.copy(), points.dst.copy()
    ells: Ellipsoids | None = None
    if model in PLANE_MODELS:
        for sys_ in (s_sys, d_sys):
            if not sys_.projected:
                raise FitError(f"{model} fits plane coordinates; {sys_.alias} is geographic (use e.g. "
                               f"{sys_.alias}-gk39)")
        p_src, p_dst = s_sys, d_sys
    else:
        if s_sys.kind != "epsg" or d_sys.kind != "epsg":
            raise FitError(f"bursa7 needs ellipsoidal systems; {source} -> {target} is not (use helmert4)")
        p_src, p_dst = get_system(s_sys.geographic), get_system(d_sys.geographic)
        src[:, :2] = _to_geographic(s_sys, p_src, src[:, :2])
        dst[:, :2] = _to_geographic(d_sys, p_dst, dst[:, :2])
        ells = (_ellipsoid(p_src), _ellipsoid(p_dst))
    control = ~points.check
    need = MIN_POINTS[model]
    if control.sum() < need:
        raise FitError(f"{model} needs at least {need} control points ({UNKNOWNS[model]} unknowns and one "
                       f"for redundancy); got {int(control.sum())}")
    ids = np.array(points.ids)
    used = np.flatnonzero(control)
    rejected: list[str] = []
    while True:
        sol = _fit_once(model, src[used], dst[used], ells)
        norms = np.linalg.norm(sol.residuals, axis=1)
        if len(used) <= need:
            break
        worst = int(np.argmax(norms))
        others = np.delete(used, worst)
        loo = _fit_once(model, src[others], dst[others], ells)
        pred = np.linalg.norm(_residual_m(model, loo, src[used[worst]][None], dst[used[worst]][None], ells))
        # 3 sigma of a point's position: sigma0 is per coordinate, a point has `dim` of them
        if not (pred > 3.0 * loo.sigma0 * np.sqrt(sol.extra["dim"])):
            break
        rejected.append(str(ids[used[worst]]))
        used = others
        if progress:
            progress.update(1)
    check_idx = np.flatnonzero(points.check)
    check_res = _residual_m(model, sol, src[check_idx], dst[check_idx], ells) if len(check_idx) else np.zeros((0, 2))
    check_norm = np.linalg.norm(check_res, axis=1)
    # Scalars (numpy or Python) become plain floats; lists (poly2's coefficients) stay as they are.
    params = {k: (float(v) if isinstance(v, numbers.Real) else v) for k, v in sol.params.items()}
    pad = _padding(p_src, src[used, :2], pad_fraction)
    pad_t = _padding(p_dst, dst[used, :2], pad_fraction)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "model": model,
        "convention": "coordinate_frame" if model == "bursa7" else "plane",
        "source": p_src.alias,
        "target": p_dst.alias,
        "fitted_from": {"source": s_sys.alias, "target": d_sys.alias, "pairs_sha256": points.sha256},
        "parameters": params,
        "units": _UNITS[model],
        "area": {"source": _bbox(src[used, :2], pad), "target": _bbox(dst[used, :2], pad_t)},
        "statistics": {
            "n_control": int(control.sum()), "n_used": len(used), "rejected": rejected,
            "sigma0_m": sol.sigma0, "dof": sol.dof, "rejection_rule": "3 sigma, worst point first, leave-one-out",
            "residuals": [{"id": str(ids[i]), "v_m": [float(c) for c in r], "norm_m": float(np.linalg.norm(r))}
                          for i, r in zip(used, sol.residuals, strict=True)],
            "rejected_residuals": {},
            "check": {"n": len(check_idx),
                      "rmse_m": float(np.sqrt(np.mean(check_norm**2))) if len(check_idx) else None,
                      "max_m": float(check_norm.max()) if len(check_idx) else None,
                      "points": [{"id": str(ids[i]), "norm_m": float(v)} for i, v in zip(check_idx, check_norm, strict=True)]},
        },
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    doc["statistics"]["heights"] = sol.extra["dim"] == 3 if model == "bursa7" else None
    doc["statistics"]["precision"] = precision(model, sol.params, src[used], dst[used], sol.sigma0, sol.extra["dim"],
                                               ells)
    if rejected:
        rej = np.array([list(ids).index(r) for r in rejected])
        rej_res = np.linalg.norm(_residual_m(model, sol, src[rej], dst[rej], ells), axis=1)
        doc["statistics"]["rejected_residuals"] = {r: float(v) for r, v in zip(rejected, rej_res, strict=True)}
    if model == "bursa7":
        assert ells is not None  # set above for every non-plane model
        e_s, e_d = (f"+a={a!r} +rf={rf!r}" for a, rf in ells)
        doc["ellipsoids"] = {"source": list(ells[0]), "target": list(ells[1])}
        doc["position_vector"] = to_position_vector(params)
        doc["proj_pipeline"] = bursa_pipeline(params, e_s, e_d)
    else:
        doc["proj_pipeline"] = plane_pipeline(model, params)
    return FitResult(doc, rejected)


_UNITS = {
    "helmert4": {"tx_m": "m", "ty_m": "m", "scale": "factor (ppm = (scale-1)*1e6)", "theta_arcsec": "arc-second"},
    "affine": {"a0": "m", "b0": "m", "a1..b2": "unitless"},
    "poly2": {"cx, cy": "m per power of (coordinate - origin) / norm_m"},
    "bursa7": {"t": "m", "r": "arc-second (coordinate frame)", "s": "ppm"},
}


def _ellipsoid(sys_: CrsSystem) -> tuple[float, float]:
    from pyproj import CRS

    if sys_.epsg is None:
        raise FitError(f"{sys_.alias} has no ellipsoid")
    ell = CRS.from_epsg(sys_.epsg).ellipsoid
    if ell is None:
        raise FitError(f"{sys_.alias} has no ellipsoid")
    return float(ell.semi_major_metre), float(ell.inverse_flattening)


def _to_geographic(sys_: CrsSystem, geo: CrsSystem, xy: np.ndarray) -> np.ndarray:
    if sys_.alias == geo.alias:
        return xy
    from geo.crs.transform import proj_transform

    if sys_.epsg is None or geo.epsg is None:
        raise FitError(f"{sys_.alias} -> {geo.alias}: only EPSG systems have a geographic system")
    return np.column_stack(proj_transform(sys_.epsg, geo.epsg, xy[:, 0], xy[:, 1]))


def _padding(sys_: CrsSystem, xy: np.ndarray, fraction: float) -> float:
    span = float(max(np.ptp(xy[:, 0]), np.ptp(xy[:, 1])))
    return max(span * fraction, 0.01 if not sys_.projected else 1000.0)


def _bbox(xy: np.ndarray, pad: float) -> list[float]:
    return [float(xy[:, 0].min() - pad), float(xy[:, 1].min() - pad),
            float(xy[:, 0].max() + pad), float(xy[:, 1].max() + pad)]
