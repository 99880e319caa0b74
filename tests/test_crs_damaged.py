"""Damaged or mislabelled input to `crs file`: refused with exit 2 and one line naming the fix,
never converted into wrong output with exit 0 (issue 13). The files are written here with pyogrio
and then damaged byte by byte, as they arrive from old systems."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from geo.crs import files
from geo.crs.systems import get_system

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["东城区城管执法队", "朝阳区·望京街道", "海淀区中关村"]


def crs(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "crs", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, check=False)


def refused(r: subprocess.CompletedProcess, *texts: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for text in texts:
        assert text in lines[0], lines[0]
    return lines[0]


def frame(n: int = 3, crs_: str = "EPSG:4490") -> gpd.GeoDataFrame:
    lon, lat = np.linspace(116.2, 116.6, n), np.linspace(39.8, 40.0, n)
    return gpd.GeoDataFrame({"名称": [NAMES[i % 3] for i in range(n)], "n": np.arange(n)},
                            geometry=shapely.points(lon, lat), crs=crs_)


def gbk_shapefile(path: Path, n: int = 3) -> Path:
    pyogrio.write_dataframe(frame(n), path, encoding="GBK")
    assert path.with_suffix(".cpg").read_text().strip() == "GBK"
    return path


def test_gbk_shapefile_without_cpg_is_refused_naming_gbk(tmp_path):
    src = gbk_shapefile(tmp_path / "a.shp")
    src.with_suffix(".cpg").unlink()
    # what GDAL alone makes of it: mojibake, the failure this check exists for
    assert NAMES[0] not in set(pyogrio.read_dataframe(src).iloc[:, 0])
    refused(crs("file", src, tmp_path / "o.gpkg", "--from", "cgcs2000", "--to", "cgcs2000-gk39"),
            "a.shp declares no encoding", "not UTF-8", "decodes as GBK", "--encoding GBK")
    assert not (tmp_path / "o.gpkg").exists()
    r = crs("file", src, tmp_path / "o.gpkg", "--from", "cgcs2000", "--to", "cgcs2000-gk39", "--encoding", "GBK")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.startswith("3 features in 1 layer(s) written to")
    assert list(pyogrio.read_dataframe(tmp_path / "o.gpkg")["名称"]) == NAMES


def test_utf8_shapefile_without_cpg_is_read_as_utf8_and_said(tmp_path):
    src = tmp_path / "u.shp"
    pyogrio.write_dataframe(frame(), src, encoding="UTF-8")
    src.with_suffix(".cpg").unlink()
    r = crs("file", src, tmp_path / "o.shp", "--from", "cgcs2000", "--to", "gcj02")
    assert r.returncode == 0, r.stderr
    assert "note: u.shp: no encoding declared; the text is valid UTF-8 and was read as UTF-8" in r.stdout
    assert list(pyogrio.read_dataframe(tmp_path / "o.shp")["名称"]) == NAMES


def test_cpg_saying_utf8_over_gbk_data_is_refused(tmp_path):
    src = gbk_shapefile(tmp_path / "a.shp")
    src.with_suffix(".cpg").write_text("UTF-8\n")
    refused(crs("file", src, tmp_path / "o.gpkg", "--from", "cgcs2000", "--to", "cgcs2000-gk39"),
            "not valid UTF-8 (a.cpg says UTF-8)", "decodes as GBK", "--encoding GBK")
    # --encoding overrides the wrong .cpg
    r = crs("file", src, tmp_path / "o.gpkg", "--from", "cgcs2000", "--to", "cgcs2000-gk39", "--encoding", "gbk")
    assert r.returncode == 0, r.stderr
    assert list(pyogrio.read_dataframe(tmp_path / "o.gpkg")["名称"]) == NAMES


def test_misspelt_encoding_names_the_likely_one(tmp_path):
    src = gbk_shapefile(tmp_path / "a.shp")
    refused(crs("file", src, tmp_path / "o.gpkg", "--from", "cgcs2000", "--to", "cgcs2000-gk39", "--encoding", "GBX"),
            "unknown encoding 'GBX' (--encoding)", "decodes as GBK", "pass --encoding GBK")
    # a declared encoding the bytes do not fit is refused the same way
    refused(crs("file", src, tmp_path / "o.gpkg", "--from", "cgcs2000", "--to", "cgcs2000-gk39", "--encoding", "UTF-8"),
            "not valid UTF-8 (--encoding UTF-8)", "--encoding GBK")


def test_gbk_csv_is_refused_naming_gbk_and_converts_with_it(tmp_path):
    text = "id,名称,x,y\n1,东城区,116.4,39.91\n2,朝阳区,116.45,39.93\n"
    (tmp_path / "a.csv").write_bytes(text.encode("gbk"))
    refused(crs("file", tmp_path / "a.csv", tmp_path / "o.csv", "--from", "gcj02", "--to", "cgcs2000"),
            "a.csv: the text is not valid UTF-8", "decodes as GBK", "--encoding GBK")
    assert not (tmp_path / "o.csv").exists()
    r = crs("file", tmp_path / "a.csv", tmp_path / "o.csv", "--from", "gcj02", "--to", "cgcs2000", "--encoding", "GBK")
    assert r.returncode == 0, r.stderr
    out = (tmp_path / "o.csv").read_bytes().decode("gbk").splitlines()
    assert out[0] == "id,名称,x,y" and out[1].startswith("1,东城区,116.39")


def test_truncated_shp_is_refused(tmp_path):
    src = gbk_shapefile(tmp_path / "t.shp", n=1500)
    raw = src.read_bytes()
    src.write_bytes(raw[:len(raw) // 2])
    # GDAL alone reads the records beyond the end as features without geometry
    assert pyogrio.read_dataframe(src, encoding="GBK").geometry.isna().sum() > 700
    refused(crs("file", src, tmp_path / "o.gpkg", "--from", "cgcs2000", "--to", "cgcs2000-gk39"),
            "t.shp is truncated", "of 1500 records lie beyond its end", "Copy the file again")
    assert not (tmp_path / "o.gpkg").exists()
    # no .shx to tell the records apart: the header's length still gives it away
    src.with_suffix(".shx").unlink()
    refused(crs("file", src, tmp_path / "o.gpkg", "--from", "cgcs2000", "--to", "cgcs2000-gk39"), "t.shp is truncated")


def test_dbf_with_fewer_records_than_shp_is_refused(tmp_path):
    src = gbk_shapefile(tmp_path / "a.shp", n=10)
    dbf = bytearray(src.with_suffix(".dbf").read_bytes())
    dbf[4:8] = (7).to_bytes(4, "little")  # a .dbf cut after 7 records, its header updated
    src.with_suffix(".dbf").write_bytes(bytes(dbf))
    refused(crs("file", src, tmp_path / "o.gpkg", "--from", "cgcs2000", "--to", "cgcs2000-gk39"),
            "a.dbf has 7 records and a.shp 10")


def test_missing_dbf_is_refused_unless_geometry_only(tmp_path):
    src = gbk_shapefile(tmp_path / "d.shp")
    src.with_suffix(".dbf").unlink()
    refused(crs("file", src, tmp_path / "o.gpkg", "--from", "cgcs2000", "--to", "cgcs2000-gk39"),
            "d.dbf is missing", "every attribute would be lost", "--geometry-only")
    assert not (tmp_path / "o.gpkg").exists()
    r = crs("file", src, tmp_path / "o.gpkg", "--from", "cgcs2000", "--to", "cgcs2000-gk39", "--geometry-only")
    assert r.returncode == 0 and "converting the geometries alone" in r.stdout, r.stderr
    assert pyogrio.read_info(tmp_path / "o.gpkg")["features"] == 3


def test_projected_file_given_as_gcj02_is_refused(tmp_path):
    src = tmp_path / "p.shp"
    pyogrio.write_dataframe(frame().to_crs(4527), src, encoding="GBK")
    assert 39_300_000 < pyogrio.read_dataframe(src).geometry.x.min() < 39_500_000
    refused(crs("file", src, tmp_path / "o.gpkg", "--from", "gcj02", "--to", "cgcs2000"),
            "p.shp is labelled EPSG:4527 (projected) but --from is gcj02", "use --from cgcs2000-gk39")
    # without its .prj the numbers themselves give it away
    src.with_suffix(".prj").unlink()
    refused(crs("file", src, tmp_path / "o.gpkg", "--from", "gcj02", "--to", "cgcs2000"),
            "3 point(s) lie outside the range of gcj02", "check --from")
    assert not (tmp_path / "o.gpkg").exists()
    refused(crs("point", "--from", "gcj02", "--to", "cgcs2000", "39366165", "4419000"), "outside the range of gcj02")


@pytest.mark.parametrize(("system", "x", "y"), [
    ("cgcs2000", 39.9, 116.4),  # swapped axes: latitude 116
    ("cgcs2000-gk39", 500_000.0, 4_419_000.0),  # no zone prefix: a CM-117 easting given as zone 39
    ("bd09", 12_956_000.0, 4_852_000.0),  # web Mercator metres given as BD-09 degrees
])
def test_coordinates_outside_the_source_system_are_refused(system, x, y):
    refused(crs("point", "--from", system, "--to", "wgs84", x, y), f"outside the range of {system}")


def test_prj_contradicting_from_is_refused_and_failed_output_leaves_nothing(tmp_path):
    src = tmp_path / "b.gpkg"
    pyogrio.write_dataframe(frame().to_crs(2415), src)  # labelled Beijing 1954 GK zone 39
    refused(crs("file", src, tmp_path / "o.gpkg", "--from", "cgcs2000-gk39", "--to", "cgcs2000"),
            "b.gpkg is labelled EPSG:2415 (projected) but --from is cgcs2000-gk39", "use --from bj54-gk39")
    with pytest.raises(files.FileError, match=r"labelled EPSG:4490 \(longitude/latitude\) but --from is local"):
        files.check_labels("g.gpkg", {"g": "EPSG:4490"}, get_system("local"))
    files.check_labels("l.shp", {"l": "EPSG:2415"}, get_system("local"))  # a stale projected label is tolerated
    files.check_labels("w.kml", {"w": "EPSG:4326"}, get_system("gcj02"))  # web-map data labelled WGS84
    assert not list(tmp_path.glob("o.*")) and not list(tmp_path.glob(".crs-*"))


def test_verify_refuses_a_misread_file_and_takes_encoding_for_shapefiles_only(tmp_path):
    src = gbk_shapefile(tmp_path / "a.shp")
    src.with_suffix(".cpg").unlink()
    r = crs("file", src, tmp_path / "b.gpkg", "--from", "cgcs2000", "--to", "wgs84", "--encoding", "GBK")
    assert r.returncode == 0, r.stderr
    refused(crs("verify", src, tmp_path / "b.gpkg"), "a.shp declares no encoding", "--encoding GBK")
    r = crs("verify", src, tmp_path / "b.gpkg", "--encoding", "GBK")
    assert r.returncode == 0 and r.stdout.startswith("ok"), (r.stdout, r.stderr)
