"""Synthetic control points for the crs tests: known parameters, small noise, gross outliers."""

from __future__ import annotations

import numpy as np

from geo.crs.fit import ControlPoints
from geo.crs.models import ARCSEC, bursa_apply, cart_to_geodetic, geodetic_to_cart
from geo.crs.transform import proj_transform

# Plausible Beijing 1954 -> CGCS2000 figures (coordinate frame); invented, not official.
BURSA = {"tx_m": -15.8, "ty_m": 131.2, "tz_m": 79.6, "rx_arcsec": -0.3, "ry_arcsec": 1.2,
         "rz_arcsec": -2.1, "s_ppm": -2.5}
HELMERT = {"tx_m": 300.5, "ty_m": -120.25, "scale": 1 + 4.2e-6, "theta_arcsec": 5.3}
KRASS = (6378245.0, 298.3)
GRS80 = (6378137.0, 298.257222101)


def beijing_lonlat(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(115.6, 117.3, n), rng.uniform(39.5, 40.9, n)


def _roles(n: int) -> np.ndarray:
    check = np.zeros(n, dtype=bool)
    check[4::5] = True  # every 5th point held out
    return check


def bursa_points(n: int = 40, noise_m: float = 0.003, outliers: bool = True, heights: bool = True,
                 seed: int = 1) -> ControlPoints:
    rng = np.random.default_rng(seed)
    lon, lat = beijing_lonlat(n, seed)
    h = rng.uniform(20, 800, n) if heights else np.zeros(n)
    out = bursa_apply(geodetic_to_cart(lon, lat, h, *KRASS), BURSA)
    out = out + rng.normal(0, noise_m, out.shape)
    lon2, lat2, h2 = cart_to_geodetic(out, *GRS80)
    check = _roles(n)
    if outliers:  # gross errors on two control points: 0.6 m north, 1.2 m east
        lat2[3] += 0.6 / 111_320
        lon2[7] += 1.2 / (111_320 * np.cos(np.radians(lat2[7])))
    nan = np.full(n, np.nan)
    return ControlPoints([f"P{i:02d}" for i in range(n)], np.column_stack([lon, lat, h if heights else nan]),
                         np.column_stack([lon2, lat2, h2 if heights else nan]), check, "synthetic")


def helmert_apply(x, y, p=HELMERT):
    th = p["theta_arcsec"] * ARCSEC
    c, s = p["scale"] * np.cos(th), p["scale"] * np.sin(th)
    return p["tx_m"] + c * x + s * y, p["ty_m"] - s * x + c * y


def helmert_points(n: int = 40, noise_m: float = 0.003, outliers: bool = True, seed: int = 2) -> ControlPoints:
    rng = np.random.default_rng(seed)
    x, y = proj_transform(4214, 2415, *beijing_lonlat(n, seed))
    X, Y = helmert_apply(x, y)
    X, Y = X + rng.normal(0, noise_m, n), Y + rng.normal(0, noise_m, n)
    if outliers:
        X[5] += 0.8
        Y[11] -= 0.5
    nan = np.full(n, np.nan)
    return ControlPoints([f"Q{i:02d}" for i in range(n)], np.column_stack([x, y, nan]), np.column_stack([X, Y, nan]),
                         _roles(n), "synthetic")


def write_pairs_csv(points: ControlPoints, path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("id,x_src,y_src,x_dst,y_dst,role\n")
        for i, pid in enumerate(points.ids):
            s, d = points.src[i], points.dst[i]
            f.write(f"{pid},{float(s[0])!r},{float(s[1])!r},{float(d[0])!r},{float(d[1])!r},{'check' if points.check[i] else 'control'}\n")
