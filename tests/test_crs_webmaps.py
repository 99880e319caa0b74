"""GCJ-02 / BD-09: forward against the public test vectors, exact inverses over Beijing."""

from __future__ import annotations

import numpy as np
import pytest

from geo.crs import webmaps

# WGS84 -> GCJ-02 -> BD-09 (DOMAIN.md)
VECTORS = [
    ((116.391349, 39.907375), (116.397590191, 39.908776294), (116.403963025, 39.915119834)),  # Tiananmen
    ((116.729, 39.909), (116.735063292, 39.910218365), (116.741522271, 39.916306826)),  # Tongzhou
]
M_PER_DEG = 111_320.0


@pytest.mark.parametrize(("wgs", "gcj", "bd"), VECTORS)
def test_forward_matches_public_vectors(wgs, gcj, bd):
    g = webmaps.wgs84_to_gcj02(*wgs)
    assert np.allclose(g, gcj, atol=1e-9, rtol=0)
    b = webmaps.gcj02_to_bd09(*g)
    assert np.allclose(b, bd, atol=1e-9, rtol=0)


def _beijing_grid(n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = np.meshgrid(np.linspace(115.4, 117.5, n), np.linspace(39.4, 41.1, n))
    return lon.ravel(), lat.ravel()


def _max_error_m(lon, lat, lon2, lat2) -> float:
    dx = (lon2 - lon) * M_PER_DEG * np.cos(np.radians(lat))
    dy = (lat2 - lat) * M_PER_DEG
    return float(np.max(np.hypot(dx, dy)))


def test_gcj02_inverse_is_exact_over_beijing():
    lon, lat = _beijing_grid()
    back = webmaps.gcj02_to_wgs84(*webmaps.wgs84_to_gcj02(lon, lat))
    assert _max_error_m(lon, lat, *back) < 1e-7


def test_bd09_inverse_is_exact_over_beijing():
    lon, lat = _beijing_grid()
    back = webmaps.bd09_to_wgs84(*webmaps.wgs84_to_bd09(lon, lat))
    assert _max_error_m(lon, lat, *back) < 1e-7


def test_naive_inverse_would_be_metres_off():
    """Why the iteration matters: 2w - f(w) misses by metres in Beijing."""
    lon, lat = _beijing_grid(50)
    glon, glat = webmaps.wgs84_to_gcj02(lon, lat)
    flon, flat = webmaps.wgs84_to_gcj02(glon, glat)
    naive = (2 * glon - flon, 2 * glat - flat)
    assert _max_error_m(lon, lat, *naive) > 0.5


def test_outside_china_is_unchanged():
    lon, lat = np.array([2.35, -74.0]), np.array([48.85, 40.7])
    glon, glat = webmaps.wgs84_to_gcj02(lon, lat)
    assert np.array_equal(glon, lon) and np.array_equal(glat, lat)
    wlon, wlat = webmaps.gcj02_to_wgs84(lon, lat)
    assert np.array_equal(wlon, lon) and np.array_equal(wlat, lat)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        webmaps.wgs84_to_gcj02([116.0, 117.0], [39.0])
