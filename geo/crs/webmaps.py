"""GCJ-02 and BD-09, the obfuscated web-map systems used by Amap/Tencent and Baidu.

They are not PROJ CRSs. The forward transforms are the public formula; the inverses are solved by
fixed-point iteration (the common "naive" inverse 2w - f(w) is off by up to 3.4 m in Beijing).
All functions take and return numpy arrays (or scalars) of longitude and latitude in degrees, and
leave points outside China unchanged, as the web maps do.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]

_A = 6378245.0  # Krassowsky semi-major axis used by the formula
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0

# The rough rectangle the public formula treats as "China"; outside it no offset is applied.
CHINA_LON = (72.004, 137.8347)
CHINA_LAT = (0.8293, 55.8271)


def outside_china(lon: ArrayLike, lat: ArrayLike) -> npt.NDArray[np.bool_]:
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    return (lon < CHINA_LON[0]) | (lon > CHINA_LON[1]) | (lat < CHINA_LAT[0]) | (lat > CHINA_LAT[1])


def _delta(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The GCJ-02 offset (degrees) at a WGS84 position."""
    x = lon - 105.0
    y = lat - 35.0
    sx = np.sqrt(np.abs(x))
    dlat = (
        -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def _arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    if lon_a.shape != lat_a.shape:
        raise ValueError(f"lon and lat differ in shape: {lon_a.shape} != {lat_a.shape}")
    return lon_a, lat_a


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon_a, lat_a = _arrays(lon, lat)
    dlon, dlat = _delta(lon_a, lat_a)
    out = outside_china(lon_a, lat_a)
    return np.where(out, lon_a, lon_a + dlon), np.where(out, lat_a, lat_a + dlat)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    x, y = _arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd09_to_gcj02_naive(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    x = lon - 0.0065
    y = lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


# 1e-12 degrees is about 0.1 micrometre: far inside the 1e-7 m the inverses promise.
_TOL_DEG = 1e-12
_MAX_ITER = 30


def _invert(forward, lon_t: FloatArray, lat_t: FloatArray, guess: tuple[FloatArray, FloatArray]):  # type: ignore[no-untyped-def]
    """Solve forward(p) = target by fixed-point iteration p <- p - (forward(p) - target).

    The offsets change slowly with position (their Jacobian is close to the identity), so the
    iteration contracts fast: 3-5 steps reach 1e-12 degrees.
    """
    lon_p, lat_p = guess
    for _ in range(_MAX_ITER):
        flon, flat = forward(lon_p, lat_p)
        dlon = flon - lon_t
        dlat = flat - lat_t
        lon_p = lon_p - dlon
        lat_p = lat_p - dlat
        if np.all(np.abs(dlon) < _TOL_DEG) and np.all(np.abs(dlat) < _TOL_DEG):
            break
    return lon_p, lat_p


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Exact inverse of wgs84_to_gcj02 (error < 1e-7 m)."""
    lon_t, lat_t = _arrays(lon, lat)
    return _invert(wgs84_to_gcj02, lon_t, lat_t, (lon_t.copy(), lat_t.copy()))


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Exact inverse of gcj02_to_bd09, starting from the usual closed-form approximation."""
    lon_t, lat_t = _arrays(lon, lat)
    return _invert(gcj02_to_bd09, lon_t, lat_t, _bd09_to_gcj02_naive(lon_t, lat_t))


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))
