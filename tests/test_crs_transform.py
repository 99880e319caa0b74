"""The registry and the transform chain: exact EPSG conversions, refusals, web maps, parameters."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Transformer

from geo.crs import webmaps
from geo.crs.fit import fit
from geo.crs.models import OutsideArea, ParamsError, load_params, save_params
from geo.crs.systems import SYSTEMS, UnknownSystem, get_system
from geo.crs.transform import DatumShiftRefused, build_transform
from tests.crs_synthetic import beijing_lonlat, bursa_points, helmert_points

M_PER_DEG = 111_320.0


def _err_m(x0, y0, x1, y1, geographic: bool) -> float:
    dx, dy = np.asarray(x1) - x0, np.asarray(y1) - y0
    if geographic:
        dx, dy = dx * M_PER_DEG * np.cos(np.radians(y0)), dy * M_PER_DEG
    return float(np.max(np.hypot(dx, dy)))


def test_registry_has_the_issue_systems():
    expected = {"cgcs2000": 4490, "cgcs2000-gk39": 4527, "cgcs2000-gk117": 4548, "bj54": 4214, "bj54-gk39": 2415,
                "bj54-gk117": 2436, "xian80": 4610, "xian80-gk39": 2363, "xian80-gk117": 2384, "wgs84": 4326,
                "webmerc": 3857, "gcj02": None, "bd09": None, "local": None}
    assert {k: v.epsg for k, v in SYSTEMS.items()} == expected
    assert get_system("EPSG:4527").alias == "cgcs2000-gk39"
    assert get_system("4490").alias == "cgcs2000"
    with pytest.raises(UnknownSystem, match="unknown coordinate system 'bj55'"):
        get_system("bj55")


@pytest.mark.parametrize("other", ["cgcs2000-gk39", "cgcs2000-gk117", "webmerc", "wgs84", "gcj02", "bd09"])
def test_round_trip_from_cgcs2000_below_1mm(other):
    lon, lat = beijing_lonlat(20_000)
    there = build_transform("cgcs2000", other)(lon, lat)
    back = build_transform(other, "cgcs2000")(*there)
    assert _err_m(lon, lat, *back, geographic=True) < 1e-3


@pytest.mark.parametrize("pair", [("bj54", "bj54-gk39"), ("xian80", "xian80-gk117"), ("cgcs2000-gk39", "cgcs2000-gk117")])
def test_round_trip_inside_old_datums_below_1mm(pair):
    lon, lat = beijing_lonlat(5_000)
    a, b = pair
    start = (lon, lat) if not get_system(a).projected else build_transform("cgcs2000", a)(lon, lat)
    back = build_transform(b, a)(*build_transform(a, b)(*start))
    assert _err_m(*start, *back, geographic=not get_system(a).projected) < 1e-3


def test_gk39_is_gk117_plus_zone_prefix():
    lon, lat = beijing_lonlat(100)
    x39, y39 = build_transform("cgcs2000", "cgcs2000-gk39")(lon, lat)
    x117, y117 = build_transform("cgcs2000", "cgcs2000-gk117")(lon, lat)
    assert np.allclose(x39 - x117, 39_000_000.0, atol=1e-6) and np.allclose(y39, y117, atol=1e-6)


def test_matches_plain_pyproj_for_gk():
    lon, lat = beijing_lonlat(1000)
    ours = build_transform("cgcs2000", "cgcs2000-gk39")(lon, lat)
    theirs = Transformer.from_crs(4490, 4527, always_xy=True).transform(lon, lat)
    assert np.array_equal(ours[0], theirs[0]) and np.array_equal(ours[1], theirs[1])


def test_large_arrays_are_split_over_threads_with_the_same_result():
    lon, lat = beijing_lonlat(600_000)
    ours = build_transform("cgcs2000", "cgcs2000-gk39")(lon, lat)
    theirs = Transformer.from_crs(4490, 4527, always_xy=True).transform(lon, lat)
    assert np.array_equal(ours[0], theirs[0]) and np.array_equal(ours[1], theirs[1])


@pytest.mark.parametrize(("a", "b"), [("bj54", "cgcs2000"), ("xian80-gk39", "cgcs2000-gk39"), ("cgcs2000", "bj54"),
                                      ("bj54", "xian80"), ("local", "cgcs2000"), ("gcj02", "bj54-gk39")])
def test_old_datum_without_parameters_is_refused(a, b):
    with pytest.raises(DatumShiftRefused, match="--params"):
        build_transform(a, b)


def test_why_we_refuse_the_ballpark_answer():
    """PROJ with allow_ballpark=True answers bj54 -> cgcs2000 without complaint: a null shift,
    i.e. the coordinates unchanged, while the real datum shift is tens of metres."""
    lon, lat = beijing_lonlat(10)
    ballpark = Transformer.from_crs(4214, 4490, always_xy=True, allow_ballpark=True)
    assert "Ballpark" in ballpark.description
    bx, by = ballpark.transform(lon, lat)
    assert np.allclose(bx, lon, atol=0) and np.allclose(by, lat, atol=0)
    # the (synthetic, realistic) Bursa parameters move the same points by tens of metres
    doc = fit(bursa_points(outliers=False), "bursa7", "bj54", "cgcs2000").doc
    tx, ty = build_transform("bj54", "cgcs2000", doc)(np.clip(lon, 115.7, 117.2), np.clip(lat, 39.6, 40.8))
    assert _err_m(np.clip(lon, 115.7, 117.2), np.clip(lat, 39.6, 40.8), tx, ty, geographic=True) > 10.0


def test_webmaps_in_the_chain_are_the_exact_functions():
    lon, lat = beijing_lonlat(1000)
    g = build_transform("cgcs2000", "gcj02")(lon, lat)
    assert np.array_equal(g[0], webmaps.wgs84_to_gcj02(lon, lat)[0])
    b = build_transform("gcj02", "bd09")(*g)
    back = build_transform("bd09", "cgcs2000-gk39")(*b)
    direct = build_transform("cgcs2000", "cgcs2000-gk39")(lon, lat)
    assert _err_m(*direct, *back, geographic=False) < 1e-6


def test_parameter_file_links_the_datums_both_ways(tmp_path):
    doc = save_params(fit(bursa_points(), "bursa7", "bj54", "cgcs2000").doc, tmp_path / "p.json")
    doc = load_params(tmp_path / "p.json")
    lon, lat = np.array([116.2, 116.4]), np.array([39.9, 40.1])
    x, y = build_transform("bj54-gk39", "cgcs2000-gk39", doc)(*build_transform("bj54", "bj54-gk39")(lon, lat))
    back = build_transform("cgcs2000-gk39", "bj54", doc)(x, y)
    assert _err_m(lon, lat, *back, geographic=True) < 1e-6
    with pytest.raises(ParamsError, match="converts bj54 -> cgcs2000, not xian80 -> cgcs2000"):
        build_transform("xian80", "cgcs2000", doc)


def test_points_outside_the_fitted_area_are_refused():
    doc = fit(helmert_points(), "helmert4", "bj54-gk39", "cgcs2000-gk39").doc
    t = build_transform("bj54", "cgcs2000", doc)
    t([116.4], [39.9])
    with pytest.raises(OutsideArea, match="outside the area of validity"):
        t([121.5], [31.2])  # Shanghai


def test_edited_parameter_file_is_refused(tmp_path):
    path = tmp_path / "p.json"
    save_params(fit(helmert_points(), "helmert4", "bj54-gk39", "cgcs2000-gk39").doc, path)
    path.write_text(path.read_text().replace('"tx_m": 3', '"tx_m": 4'))
    with pytest.raises(ParamsError, match="sha256"):
        load_params(path)
    with pytest.raises(ParamsError, match="does not exist"):
        load_params(tmp_path / "missing.json")
