"""`crs file` streams in chunks: the same output as a whole-file conversion, a spatial index on
GeoPackage layers, the progress counted in features, and a refusal half-way leaves nothing behind."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from geo.crs import stream
from geo.crs.compare import compare_datasets
from geo.crs.files import FileError, read_dataset
from geo.crs.systems import OutsideSystem
from geo.crs.transform import build_transform


class Bar:
    def __init__(self) -> None:
        self.total: int | None = None
        self.n = 0

    def update(self, k: int) -> None:
        self.n += k

    def refresh(self) -> None:
        pass


def points(n: int, crs: str = "EPSG:4490") -> gpd.GeoDataFrame:
    lon, lat = np.linspace(116.2, 116.6, n), np.linspace(39.8, 40.0, n)
    return gpd.GeoDataFrame({"名称": [f"点{i}" for i in range(n)], "n": np.arange(n)},
                            geometry=shapely.points(lon, lat), crs=crs)


def test_chunked_gpkg_equals_the_whole_conversion_and_is_indexed(tmp_path):
    pyogrio.write_dataframe(points(25), tmp_path / "a.gpkg", layer="pts")
    t = build_transform("cgcs2000", "cgcs2000-gk39")
    bar = Bar()
    done = stream.convert_file(tmp_path / "a.gpkg", tmp_path / "c.gpkg", t, chunk=4, progress=bar)
    stream.convert_file(tmp_path / "a.gpkg", tmp_path / "w.gpkg", t, chunk=1000)
    assert (done.features, done.layers, bar.total, bar.n) == (25, 1, 25, 25)
    problems, worst = compare_datasets(read_dataset(tmp_path / "c.gpkg"), read_dataset(tmp_path / "w.gpkg"), 1e-9)
    assert problems == [] and worst == 0.0
    info = pyogrio.read_info(tmp_path / "c.gpkg", layer="pts")
    assert info["crs"] == "EPSG:4527" and info["capabilities"]["fast_spatial_filter"]
    # the index answers a box query like a scan does
    allf = read_dataset(tmp_path / "c.gpkg").layers[0].frame
    x0, y0, x1, y1 = allf.total_bounds
    box = (x0, y0, (x0 + x1) / 2, (y0 + y1) / 2)
    got = pyogrio.read_dataframe(tmp_path / "c.gpkg", bbox=box)
    inside = allf.cx[box[0]:box[2], box[1]:box[3]]
    assert 0 < len(got) < 25 and sorted(got["n"]) == sorted(inside["n"])


def test_chunked_shapefile_polygons_are_multi_and_keep_gbk(tmp_path):
    polys = [shapely.box(116.2 + i * 0.01, 39.9, 116.205 + i * 0.01, 39.905) for i in range(9)]
    polys[4] = shapely.MultiPolygon([polys[4], shapely.box(116.3, 40.0, 116.31, 40.01)])
    g = gpd.GeoDataFrame({"名称": [f"区{i}" for i in range(9)]}, geometry=polys, crs="EPSG:4490")
    pyogrio.write_dataframe(g, tmp_path / "a.shp", encoding="GBK")
    stream.convert_file(tmp_path / "a.shp", tmp_path / "b.gpkg", build_transform("cgcs2000", "gcj02"), chunk=2)
    out = pyogrio.read_dataframe(tmp_path / "b.gpkg")
    assert set(out.geom_type) == {"MultiPolygon"} and list(out["名称"]) == [f"区{i}" for i in range(9)]
    stream.convert_file(tmp_path / "a.shp", tmp_path / "c.shp", build_transform("cgcs2000", "gcj02"), chunk=2)
    assert (tmp_path / "c.cpg").read_text().strip() == "GBK"
    assert list(pyogrio.read_dataframe(tmp_path / "c.shp")["名称"]) == [f"区{i}" for i in range(9)]


def test_chunked_csv_keeps_its_bom_once(tmp_path):
    rows = "".join(f"{i},点{i},{116.3 + i * 0.001},{39.9}\n" for i in range(7))
    (tmp_path / "a.csv").write_bytes(b"\xef\xbb\xbf" + f"id,名称,x,y\n{rows}".encode())
    stream.convert_file(tmp_path / "a.csv", tmp_path / "b.csv", build_transform("gcj02", "cgcs2000"), chunk=3)
    raw = (tmp_path / "b.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\xef\xbb\xbf") == 1
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0] == "id,名称,x,y" and len(lines) == 8 and lines[7].startswith("6,点6,116.2999")


def test_refusal_half_way_leaves_no_partial_output_and_keeps_the_old_one(tmp_path):
    g = points(10)
    g.loc[8, "geometry"] = shapely.Point(39_366_165.0, 4_419_000.0)  # a projected point in the 5th chunk
    pyogrio.write_dataframe(g.set_crs("EPSG:4326", allow_override=True), tmp_path / "a.gpkg")  # web-map data: WGS84 label
    t = build_transform("gcj02", "cgcs2000")
    with pytest.raises(OutsideSystem, match="1 point"):
        stream.convert_file(tmp_path / "a.gpkg", tmp_path / "b.gpkg", t, chunk=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gpkg"]
    (tmp_path / "b.gpkg").write_bytes(b"old output")
    with pytest.raises(OutsideSystem):
        stream.convert_file(tmp_path / "a.gpkg", tmp_path / "b.gpkg", t, chunk=2, overwrite=True)
    assert (tmp_path / "b.gpkg").read_bytes() == b"old output"
    with pytest.raises(FileError, match="exists; pass --overwrite"):
        stream.convert_file(tmp_path / "a.gpkg", tmp_path / "b.gpkg", t, chunk=2)


def test_output_into_a_missing_directory_or_onto_the_input_is_refused(tmp_path):
    pyogrio.write_dataframe(points(3), tmp_path / "a.gpkg")
    t = build_transform("cgcs2000", "wgs84")
    with pytest.raises(FileError, match="the directory .* does not exist"):
        stream.convert_file(tmp_path / "a.gpkg", tmp_path / "no" / "b.gpkg", t)
    with pytest.raises(FileError, match="is the input itself"):
        stream.convert_file(tmp_path / "a.gpkg", tmp_path / "a.gpkg", t, overwrite=True)
    assert pyogrio.read_info(tmp_path / "a.gpkg")["features"] == 3
