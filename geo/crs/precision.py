"""Standard errors and correlations of fitted parameters, and whether they mean anything alone.

Covariance: sigma0^2 (J^T J)^-1, J the Jacobian of the observations (plane coordinates; for
bursa7 geocentric X, Y, Z, or only east and north at each point when no heights were given) with
respect to the parameters, by central differences (the models are linear or nearly so).

Two parametrisations are reported. The stored one (translations at the origin of the coordinates)
is what the parameter file holds; with Gauss-Kruger or geocentric coordinates the origin lies
thousands of kilometres from the points, so its translations correlate almost perfectly with
rotation and scale: a lever-arm effect that says nothing about the fit. The centred one (the
translation replaced by the shift at the centroid of the control points) removes that: a
correlation still above THRESHOLD there means the points cannot tell the parameters apart (e.g.
bursa7 without heights over a city: scale against the vertical shift) and is warned about.
J^T J is inverted in the centred form (well conditioned) and propagated exactly to the stored one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from geo.crs.models import bursa_apply, geodetic_to_cart, plane_apply

THRESHOLD = 0.9

# Finite-difference steps per parameter (in its own unit): small against its effect, large
# against rounding of coordinates of 1e6-1e7 m.
_STEP = {"tx_m": 1e-3, "ty_m": 1e-3, "tz_m": 1e-3, "scale": 1e-7, "theta_arcsec": 1e-3, "rx_arcsec": 1e-3,
         "ry_arcsec": 1e-3, "rz_arcsec": 1e-3, "s_ppm": 1e-3, "a0": 1e-3, "b0": 1e-3}
_TRANSLATIONS = {"helmert4": ("tx_m", "ty_m"), "affine": ("a0", "b0"), "bursa7": ("tx_m", "ty_m", "tz_m")}


def _names(model: str, p: dict[str, Any]) -> list[str]:
    if model == "poly2":
        return [f"{c}[{i}]" for c in ("cx", "cy") for i in range(len(p[c]))]
    return list(p)


def _vector(model: str, p: dict[str, Any]) -> np.ndarray:
    if model == "poly2":
        return np.concatenate([p["cx"], p["cy"]]).astype(float)
    return np.array([float(p[k]) for k in p])


def _params(model: str, template: dict[str, Any], v: np.ndarray) -> dict[str, Any]:
    if model == "poly2":
        k = len(template["cx"])
        return {**template, "cx": list(v[:k]), "cy": list(v[k:])}
    return {**template, **{k: float(x) for k, x in zip(template, v, strict=True)}}


def _step(name: str) -> float:
    return _STEP.get(name, 1e-3 if name.startswith("c") else 1e-7)


def _jacobian(f: Callable[[np.ndarray], np.ndarray], v: np.ndarray, steps: np.ndarray) -> np.ndarray:
    cols = []
    for k, h in enumerate(steps):
        e = np.zeros_like(v)
        e[k] = h
        cols.append((f(v + e) - f(v - e)) / (2 * h))
    return np.column_stack(cols)


def _correlation(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.outer(sd, sd)
    return np.clip(np.nan_to_num(r, nan=0.0), -1.0, 1.0)


def _pairs(names: list[str], r: np.ndarray) -> list[tuple[str, str, float]]:
    n = len(names)
    return [(names[i], names[j], float(r[i, j])) for i in range(n) for j in range(i + 1, n)
            if abs(r[i, j]) > THRESHOLD]


def precision(model: str, params: dict[str, Any], src: np.ndarray, dst: np.ndarray, sigma0: float, dim: int,
              ells: Any = None) -> dict[str, Any]:
    """`src`, `dst`: the control points used (n, 3), as the fit saw them (bursa7: geographic)."""
    if model == "bursa7":
        centre = geodetic_to_cart(src[:, 0], src[:, 1], np.nan_to_num(src[:, 2]), *ells[0])
        lam, phi = np.radians(dst[:, 0]), np.radians(dst[:, 1])
        east = np.stack([-np.sin(lam), np.cos(lam), np.zeros_like(lam)])
        north = np.stack([-np.sin(phi) * np.cos(lam), -np.sin(phi) * np.sin(lam), np.cos(phi)])

        def observe(p: dict[str, Any]) -> np.ndarray:
            xyz = bursa_apply(centre, p)
            if dim == 3:
                return xyz.T.ravel()
            return np.concatenate([np.sum(east * xyz, axis=0), np.sum(north * xyz, axis=0)])

        points = centre
    else:
        points = src[:, :2].T

        def observe(p: dict[str, Any]) -> np.ndarray:
            return np.concatenate(plane_apply(model, p, src[:, 0], src[:, 1]))

    c = points.mean(axis=1)
    names = _names(model, params)
    trans = _TRANSLATIONS.get(model, ())
    idx = [names.index(t) for t in trans]

    def image_of_centroid(p: dict[str, Any]) -> np.ndarray:
        if model == "bursa7":
            return bursa_apply(c[:, None], p)[:, 0]
        return np.array([v[0] for v in plane_apply(model, p, np.array([c[0]]), np.array([c[1]]))])

    def to_stored(cv: np.ndarray) -> np.ndarray:
        """Centred vector (shift at the centroid in place of the translations) -> stored vector."""
        if not idx:
            return cv
        v = cv.copy()
        v[idx] = 0.0
        v[idx] = c + cv[idx] - image_of_centroid(_params(model, params, v))
        return v

    stored = _vector(model, params)
    centred = stored.copy()
    if idx:
        centred[idx] = image_of_centroid(params) - c
    steps = np.array([_step(n) for n in names])
    J = _jacobian(lambda cv: observe(_params(model, params, to_stored(cv))), centred, steps)
    scale = 1.0 / np.maximum(np.linalg.norm(J, axis=0), 1e-300)
    n_inv = np.linalg.pinv((J * scale).T @ (J * scale), rcond=1e-12, hermitian=True)
    unit_c = scale[:, None] * n_inv * scale[None, :]  # (J^T J)^-1 of the centred parameters
    G = _jacobian(to_stored, centred, steps)
    unit_s = G @ unit_c @ G.T
    s2 = sigma0**2 if np.isfinite(sigma0) else np.nan  # no redundancy: correlations only, no errors
    cov_c, cov_s = s2 * unit_c, s2 * unit_s
    c_names = [f"{n}@centroid" if i in idx else n for i, n in enumerate(names)]
    r_s, r_c = _correlation(unit_s), _correlation(unit_c)

    def se(cov: np.ndarray, ns: list[str]) -> dict[str, float | None]:
        d = np.diag(cov)
        return {n: (float(np.sqrt(max(x, 0.0))) if np.isfinite(x) else None) for n, x in zip(ns, d, strict=True)}

    intrinsic = _pairs(c_names, r_c)
    lever = [(a, b, r) for a, b, r in _pairs(names, r_s)
             if not any({a, b} == {x.removesuffix("@centroid"), y.removesuffix("@centroid")} for x, y, _ in intrinsic)]
    warnings, notes = [], []
    if intrinsic:
        hint = "give ellipsoidal heights, " if model == "bursa7" and dim == 2 else ""
        warnings.append(
            f"{model}: parameters too correlated to be meaningful one by one (|r| > {THRESHOLD} even about the centroid "
            f"of the control points): {', '.join(f'{a}/{b} {r:+.3f}' for a, b, r in intrinsic)}. The points cannot "
            f"tell them apart: {hint}spread the points wider, or use a model with fewer parameters; judge the fit by "
            "its check points, not by these values")
    if lever:
        worst = max(lever, key=lambda t: abs(t[2]))
        notes.append(
            f"{len(lever)} pair(s) of the stored parameters correlate above {THRESHOLD} (up to {worst[0]}/{worst[1]} "
            f"{worst[2]:+.6f}) only because the origin of the coordinates lies far from the points; about the "
            "centroid they do not" + ("" if intrinsic else ", and the transformation is well determined")
            + ". Compare translations at the centroid.")
    return {
        "threshold": THRESHOLD,
        "std_error": se(cov_s, names),
        "correlation": {"names": names, "matrix": np.round(r_s, 6).tolist()},
        "centred": {"centroid": [float(v) for v in c], "names": c_names, "std_error": se(cov_c, c_names),
                    "values": [float(v) for v in centred],
                    "correlation": {"names": c_names, "matrix": np.round(r_c, 6).tolist()}},
        "observations": "geocentric X, Y, Z" if model == "bursa7" and dim == 3 else (
            "east, north (no heights)" if model == "bursa7" else "plane x, y"),
        "warnings": warnings,
        "notes": notes,
    }

