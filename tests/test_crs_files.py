"""File conversion keeps layers, attributes and encodings; A -> B -> A comes back within 1 mm."""

from __future__ import annotations

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import LineString, Point, Polygon

from geo.crs import files
from geo.crs.compare import compare_datasets
from geo.crs.systems import get_system
from geo.crs.transform import build_transform

NAMES = ["东城区城管执法队", "朝阳区·望京街道", "海淀区中关村"]


def _frame(crs="EPSG:4490") -> gpd.GeoDataFrame:
    geoms = [Point(116.40, 39.91), LineString([(116.3, 39.95), (116.35, 39.97)]),
             Polygon([(116.2, 40.0), (116.25, 40.0), (116.25, 40.05), (116.2, 40.0)])]
    return gpd.GeoDataFrame({"名称": NAMES, "code": ["110101", "110105", "110108"], "n": [1, 2, 3]},
                            geometry=geoms, crs=crs)


def _convert(src, dst, a, b, overwrite=False):
    t = build_transform(a, b)
    ds = files.read_dataset(src)
    files.check_source_crs(ds, t.source)
    files.write_dataset(files.transform_dataset(ds, t), dst, t.target, overwrite)


def _round_trip(tmp_path, name, a="cgcs2000", b="cgcs2000-gk39", mid_suffix=None):
    src = tmp_path / name
    mid = tmp_path / ("mid" + (mid_suffix or src.suffix))
    back = tmp_path / ("back" + src.suffix)
    _convert(src, mid, a, b)
    _convert(mid, back, b, a)
    problems, worst = compare_datasets(files.read_dataset(src), files.read_dataset(back), 0.001)
    assert problems == [] and worst < 0.001
    return mid, back


def test_gbk_shapefile_keeps_chinese_attributes_and_encoding(tmp_path):
    pyogrio.write_dataframe(_frame().iloc[[0]], tmp_path / "a.shp", encoding="GBK")
    assert (tmp_path / "a.cpg").read_text().strip() == "GBK"
    mid, back = _round_trip(tmp_path, "a.shp")
    for out in (mid, back):
        assert out.with_suffix(".cpg").read_text().strip() == "GBK"
        assert NAMES[0].encode("gbk") in out.with_suffix(".dbf").read_bytes()
        assert out.with_suffix(".prj").exists()
    assert "Gauss" in mid.with_suffix(".prj").read_text() or "GK" in mid.with_suffix(".prj").read_text()
    assert list(gpd.read_file(back)["名称"]) == NAMES[:1]


def test_geopackage_keeps_every_layer(tmp_path):
    g = _frame()
    pyogrio.write_dataframe(g, tmp_path / "a.gpkg", layer="streets")
    pyogrio.write_dataframe(g.iloc[:2], tmp_path / "a.gpkg", layer="points")
    mid, back = _round_trip(tmp_path, "a.gpkg")
    assert [list(x) for x in pyogrio.list_layers(back)][0][0] == "streets"
    assert pyogrio.read_info(mid, layer="points")["crs"] == "EPSG:4527"


def test_geojson_round_trip(tmp_path):
    _frame().to_file(tmp_path / "a.geojson", driver="GeoJSON")
    _round_trip(tmp_path, "a.geojson")


def test_kml_round_trip_through_gcj02(tmp_path):
    pyogrio.write_dataframe(_frame().set_crs(4326, allow_override=True), tmp_path / "a.kml", driver="LIBKML")
    mid, _ = _round_trip(tmp_path, "a.kml", "cgcs2000", "gcj02")
    moved = files.read_dataset(mid).layers[0].frame.geometry.iloc[0]
    assert abs(moved.x - 116.40) > 0.004  # GCJ-02 is hundreds of metres off


def test_csv_keeps_every_other_column_byte_for_byte(tmp_path):
    text = "id,名称,x,y,note\n1,东城区,116.4,39.91,\"a, quoted\"\n2,朝阳区,116.45,39.93,\n"
    (tmp_path / "a.csv").write_text(text, encoding="utf-8")
    mid, back = _round_trip(tmp_path, "a.csv", "cgcs2000", "bd09")
    lines = back.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id,名称,x,y,note" and lines[1].startswith("1,东城区,116.4") and lines[1].endswith('"a, quoted"')


def test_bad_inputs_are_refused_with_a_reason(tmp_path):
    with pytest.raises(files.FileError, match="does not exist"):
        files.read_dataset(tmp_path / "none.shp")
    (tmp_path / "broken.gpkg").write_bytes(b"not a geopackage")
    with pytest.raises(files.FileError, match="cannot read broken.gpkg"):
        files.read_dataset(tmp_path / "broken.gpkg")
    with pytest.raises(files.FileError, match="unsupported file type"):
        files.read_dataset(tmp_path / "a.dwg")
    g = _frame()
    pyogrio.write_dataframe(g, tmp_path / "mixed.gpkg", layer="one")
    pyogrio.write_dataframe(g.to_crs(4527), tmp_path / "mixed.gpkg", layer="two")
    with pytest.raises(files.FileError, match="mixed SRIDs"):
        files.check_source_crs(files.read_dataset(tmp_path / "mixed.gpkg"), get_system("cgcs2000"))
    pyogrio.write_dataframe(g, tmp_path / "one.gpkg")
    with pytest.raises(files.FileError, match=r"labelled EPSG:4490 \(longitude/latitude\) but --from is bj54.*use --from cgcs2000"):
        files.check_source_crs(files.read_dataset(tmp_path / "one.gpkg"), get_system("bj54"))
    (tmp_path / "a.csv").write_text("lon,lat\n1,2\n")
    with pytest.raises(files.FileError, match="no column 'x'"):
        files.read_dataset(tmp_path / "a.csv")
