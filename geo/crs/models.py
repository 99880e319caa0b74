"""Transformation models fitted on control points, and their parameter files.

Models (x = easting or longitude, y = northing or latitude, always):
- helmert4: plane similarity, PROJ's 2D Helmert convention
    x' = tx + m (cos t x + sin t y),  y' = ty + m (-sin t x + cos t y)   (t in arc-seconds, m a factor)
- affine: x' = a0 + a1 x + a2 y,  y' = b0 + b1 x + b2 y  (PROJ +proj=affine)
- poly2: 12-parameter second-order polynomial on normalised coordinates (no PROJ form)
- bursa7: Bursa-Wolf 7 parameters on geocentric coordinates, COORDINATE-FRAME convention (the
  matrix printed in Chinese texts), small-angle rotation matrix exactly as PROJ's helmert without
  +exact:  X' = T + (1 + s 1e-6) R X,  R = [[1, rz, -ry], [-rz, 1, rx], [ry, -rx, 1]].
  The position-vector convention (PROJ's +towgs84, EPSG 9606) has the same T and s and the
  rotations negated. Source heights are taken as 0 and target heights are dropped, as PROJ does
  for 2D coordinates.

A parameter file is JSON: model, convention, parameters, systems, area of validity, PROJ pipeline,
statistics and a sha256 over its canonical content, checked on load so an edited file is refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from geo.crs.systems import CrsError, get_system

ARCSEC = np.pi / (180.0 * 3600.0)
FORMAT = "onemap-crs-params/1"
MODELS = ("helmert4", "bursa7", "affine", "poly2")
PLANE_MODELS = ("helmert4", "affine", "poly2")


class ParamsError(CrsError):
    pass


class OutsideArea(CrsError):
    pass


# --- geocentric -------------------------------------------------------------------------------

def ellipsoid(a: float, rf: float) -> tuple[float, float]:
    f = 1.0 / rf
    return a, f * (2.0 - f)


def geodetic_to_cart(lon, lat, h, a: float, rf: float) -> np.ndarray:
    a, e2 = ellipsoid(a, rf)
    lam, phi = np.radians(lon), np.radians(lat)
    n = a / np.sqrt(1.0 - e2 * np.sin(phi) ** 2)
    return np.stack([(n + h) * np.cos(phi) * np.cos(lam), (n + h) * np.cos(phi) * np.sin(lam),
                     (n * (1.0 - e2) + h) * np.sin(phi)])


def cart_to_geodetic(xyz: np.ndarray, a: float, rf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Iterative inverse. The start is exact at h = 0 and each round shrinks the error by about
    e2 * h / N (1e-7 for terrain heights), so 2-3 rounds reach 1e-14 rad."""
    a, e2 = ellipsoid(a, rf)
    x, y, z = xyz
    p = np.hypot(x, y)
    phi = np.arctan2(z, p * (1.0 - e2))
    for _ in range(8):
        n = a / np.sqrt(1.0 - e2 * np.sin(phi) ** 2)
        h = p / np.cos(phi) - n
        nxt = np.arctan2(z, p * (1.0 - e2 * n / (n + h)))
        done = np.all(np.abs(nxt - phi) < 1e-14)
        phi = nxt
        if done:
            break
    n = a / np.sqrt(1.0 - e2 * np.sin(phi) ** 2)
    h = p / np.cos(phi) - n
    return np.degrees(np.arctan2(y, x)), np.degrees(phi), h


def bursa_matrix(rx: float, ry: float, rz: float, convention: str = "coordinate_frame") -> np.ndarray:
    """Small-angle rotation matrix (radians in), as PROJ builds it without +exact."""
    r = np.array([[1.0, rz, -ry], [-rz, 1.0, rx], [ry, -rx, 1.0]])
    if convention == "position_vector":
        return r.T
    if convention != "coordinate_frame":
        raise ParamsError(f"unknown rotation convention {convention!r}")
    return r


def bursa_apply(xyz: np.ndarray, p: dict[str, float], convention: str = "coordinate_frame",
                inverse: bool = False) -> np.ndarray:
    t = np.array([p["tx_m"], p["ty_m"], p["tz_m"]])[:, None]
    r = bursa_matrix(p["rx_arcsec"] * ARCSEC, p["ry_arcsec"] * ARCSEC, p["rz_arcsec"] * ARCSEC, convention)
    m = 1.0 + p["s_ppm"] * 1e-6
    if inverse:  # the exact inverse of the same matrix (PROJ's reverse uses the transpose instead)
        return np.linalg.solve(m * r, xyz - t)
    return m * (r @ xyz) + t


def to_position_vector(p: dict[str, float]) -> dict[str, float]:
    """Coordinate-frame parameters rewritten for the position-vector convention (+towgs84)."""
    return {**p, "rx_arcsec": -p["rx_arcsec"], "ry_arcsec": -p["ry_arcsec"], "rz_arcsec": -p["rz_arcsec"]}


# --- plane models -----------------------------------------------------------------------------

def poly2_terms(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=-1)


def plane_apply(model: str, p: dict[str, Any], x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if model == "helmert4":
        th = p["theta_arcsec"] * ARCSEC
        c, s = p["scale"] * np.cos(th), p["scale"] * np.sin(th)
        return p["tx_m"] + c * x + s * y, p["ty_m"] - s * x + c * y
    if model == "affine":
        return p["a0"] + p["a1"] * x + p["a2"] * y, p["b0"] + p["b1"] * x + p["b2"] * y
    if model == "poly2":
        (x0, y0), (X0, Y0), k = p["origin_source"], p["origin_target"], p["norm_m"]
        terms = poly2_terms((x - x0) / k, (y - y0) / k)
        return X0 + terms @ np.asarray(p["cx"]), Y0 + terms @ np.asarray(p["cy"])
    raise ParamsError(f"unknown model {model!r}")


def plane_linear(model: str, p: dict[str, Any]) -> np.ndarray:
    """The 2x2 linear part (d(x', y') / d(x, y)), used to invert by iteration."""
    if model == "helmert4":
        th = p["theta_arcsec"] * ARCSEC
        c, s = p["scale"] * np.cos(th), p["scale"] * np.sin(th)
        return np.array([[c, s], [-s, c]])
    if model == "affine":
        return np.array([[p["a1"], p["a2"]], [p["b1"], p["b2"]]])
    k = p["norm_m"]
    return np.array([[p["cx"][1] / k, p["cx"][2] / k], [p["cy"][1] / k, p["cy"][2] / k]])


def plane_inverse(model: str, p: dict[str, Any], x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse by Newton-like iteration with the linear part: exact (one step) for helmert4 and
    affine, a few steps for poly2 whose second-order terms are tiny."""
    inv = np.linalg.inv(plane_linear(model, p))
    xt, yt = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    xs = inv[0, 0] * xt + inv[0, 1] * yt
    ys = inv[1, 0] * xt + inv[1, 1] * yt
    for _ in range(20):
        fx, fy = plane_apply(model, p, xs, ys)
        dx, dy = xt - fx, yt - fy
        xs = xs + inv[0, 0] * dx + inv[0, 1] * dy
        ys = ys + inv[1, 0] * dx + inv[1, 1] * dy
        if np.all(np.abs(dx) < 1e-9) and np.all(np.abs(dy) < 1e-9):
            break
    return xs, ys


# --- PROJ pipeline strings --------------------------------------------------------------------

def bursa_pipeline(p: dict[str, float], src_ell: str, dst_ell: str, convention: str = "coordinate_frame") -> str:
    if convention == "position_vector":
        p = to_position_vector(p)
    return (
        "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
        f"+step +proj=cart {src_ell} "
        f"+step +proj=helmert +x={p['tx_m']!r} +y={p['ty_m']!r} +z={p['tz_m']!r} "
        f"+rx={p['rx_arcsec']!r} +ry={p['ry_arcsec']!r} +rz={p['rz_arcsec']!r} +s={p['s_ppm']!r} "
        f"+convention={convention} "
        f"+step +inv +proj=cart {dst_ell} +step +proj=unitconvert +xy_in=rad +xy_out=deg"
    )


def towgs84(p: dict[str, float]) -> str:
    """The +towgs84 list (position-vector!) for coordinate-frame parameters."""
    pv = to_position_vector(p)
    return ",".join(repr(pv[k]) for k in ("tx_m", "ty_m", "tz_m", "rx_arcsec", "ry_arcsec", "rz_arcsec", "s_ppm"))


def plane_pipeline(model: str, p: dict[str, Any]) -> str | None:
    if model == "helmert4":
        # PROJ's 2D (4-parameter) Helmert: +s is the scale FACTOR here, +theta in arc-seconds.
        return (f"+proj=pipeline +step +proj=helmert +x={p['tx_m']!r} +y={p['ty_m']!r} "
                f"+s={p['scale']!r} +theta={p['theta_arcsec']!r}")
    if model == "affine":
        return (f"+proj=pipeline +step +proj=affine +xoff={p['a0']!r} +yoff={p['b0']!r} "
                f"+s11={p['a1']!r} +s12={p['a2']!r} +s21={p['b1']!r} +s22={p['b2']!r}")
    return None  # poly2: PROJ has no plain 2nd-order polynomial; applied by numpy only


# --- parameter files --------------------------------------------------------------------------

def canonical_hash(doc: dict[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def save_params(doc: dict[str, Any], path: str | Path) -> dict[str, Any]:
    doc = {**doc, "sha256": canonical_hash(doc)}
    Path(path).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return doc


def load_params(path: str | Path) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"parameter file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ParamsError(f"parameter file {path} is unreadable: {e}".replace("\n", " ")) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ParamsError(f"{path} is not a parameter file ({FORMAT})")
    if doc.get("sha256") != canonical_hash(doc):
        raise ParamsError(f"parameter file {path} fails its sha256 check: it was edited or damaged")
    if doc.get("model") not in MODELS:
        raise ParamsError(f"{path}: unknown model {doc.get('model')!r}")
    get_system(doc["source"])
    get_system(doc["target"])
    return doc


def check_area(doc: dict[str, Any], x: np.ndarray, y: np.ndarray, side: str) -> None:
    """Refuse points outside the padded bbox of the control points: a fitted model is only valid
    where it was fitted (a polynomial in particular runs away outside)."""
    x0, y0, x1, y1 = doc["area"][side]
    finite = np.isfinite(x) & np.isfinite(y)
    out = finite & ((x < x0) | (x > x1) | (y < y0) | (y > y1))
    n = int(np.count_nonzero(out))
    if n:
        i = int(np.argmax(out))
        raise OutsideArea(
            f"{n} point(s) lie outside the area of validity of the {doc['model']} parameters "
            f"({doc['source' if side == 'source' else 'target']} bbox {x0:.6f},{y0:.6f},{x1:.6f},{y1:.6f}); "
            f"first: {x[i]:.6f} {y[i]:.6f}")


def apply_params(doc: dict[str, Any], x, y, inverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Apply a parameter file from its source to its target system (or back), checking the area."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    check_area(doc, x, y, "target" if inverse else "source")
    model, p = doc["model"], doc["parameters"]
    if model in PLANE_MODELS:
        return plane_inverse(model, p, x, y) if inverse else plane_apply(model, p, x, y)
    src, dst = doc["ellipsoids"]["source"], doc["ellipsoids"]["target"]
    a_in, a_out = (dst, src) if inverse else (src, dst)
    if not inverse:
        xyz = geodetic_to_cart(x, y, np.zeros_like(x), *a_in)
        lon, lat, _ = cart_to_geodetic(bursa_apply(xyz, p, doc["convention"]), *a_out)
        return lon, lat
    # The forward takes source heights as 0 and drops the target height, so the exact inverse is
    # the source point at height 0 whose image has this longitude and latitude: find the target
    # height that maps to source height 0 (3 rounds: dh_source/dh_target is 1 within ppm).
    h = np.zeros_like(x)
    for _ in range(6):
        lon, lat, hs = cart_to_geodetic(bursa_apply(geodetic_to_cart(x, y, h, *a_in), p, doc["convention"], True), *a_out)
        if np.all(np.abs(hs) < 1e-6):  # 1 um of height moves the plan position by ~1e-11 m
            break
        h = h - hs
    return lon, lat
