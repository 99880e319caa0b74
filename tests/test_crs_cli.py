"""`manage.py crs`: real processes, real exit codes. Bad input: exit 2 and one line on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import Point

from tests.crs_synthetic import helmert_points, write_pairs_csv

ROOT = Path(__file__).resolve().parent.parent


def crs(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "crs", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, check=False)


def _bad(r: subprocess.CompletedProcess, text: str) -> None:
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], r.stderr


def test_list_and_point():
    r = crs("list")
    assert r.returncode == 0 and "cgcs2000-gk39    EPSG:4527" in r.stdout
    r = crs("point", "--from", "wgs84", "--to", "gcj02", "116.391349", "39.907375")
    assert r.stdout.strip() == "116.397590191 39.908776294"


def test_fit_then_convert_a_file_then_verify(tmp_path):
    write_pairs_csv(helmert_points(), tmp_path / "pairs.csv")
    r = crs("fit", tmp_path / "pairs.csv", "--model", "helmert4", "--from", "bj54-gk39", "--to", "cgcs2000-gk39",
            "--out", tmp_path / "p.json")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "p.json").read_text())
    assert sorted(doc["statistics"]["rejected"]) == ["Q05", "Q11"] and len(doc["sha256"]) == 64
    assert "check RMSE" in (tmp_path / "p.md").read_text()
    g = gpd.GeoDataFrame({"名称": ["东城"]}, geometry=[Point(39_447_000.0, 4_419_000.0)], crs="EPSG:2415")
    pyogrio.write_dataframe(g, tmp_path / "a.shp", encoding="GBK")
    r = crs("file", tmp_path / "a.shp", tmp_path / "b.gpkg", "--from", "bj54-gk39", "--to", "cgcs2000",
            "--params", tmp_path / "p.json")
    assert r.returncode == 0, r.stderr
    r = crs("file", tmp_path / "b.gpkg", tmp_path / "c.shp", "--from", "cgcs2000", "--to", "bj54-gk39",
            "--params", tmp_path / "p.json")
    assert r.returncode == 0, r.stderr
    r = crs("verify", tmp_path / "a.shp", tmp_path / "c.shp", "--tol", "0.001")
    assert r.returncode == 0 and r.stdout.startswith("ok"), r.stderr
    r = crs("point", "--from", "bj54-gk39", "--to", "cgcs2000-gk39", "--params", tmp_path / "p.json", "39300000", "4419000")
    _bad(r, "outside the area of validity")


@pytest.mark.parametrize(("args", "text"), [
    (["point", "--from", "bj55", "--to", "cgcs2000", "116", "40"], "unknown coordinate system 'bj55'"),
    (["point", "--from", "bj54", "--to", "cgcs2000", "116", "40"], "--params"),
    (["point", "--from", "bj54", "--to", "cgcs2000", "--params", "/no/such.json", "116", "40"], "does not exist"),
    (["file", "/no/such.shp", "/tmp/x.gpkg", "--from", "cgcs2000", "--to", "wgs84"], "does not exist"),
])
def test_bad_input_exits_2_with_one_line(args, text):
    _bad(crs(*args), text)


def test_too_few_points_unreadable_and_mixed_srids(tmp_path):
    pts = helmert_points(n=5, outliers=False)
    pts.check[:] = False
    write_pairs_csv(pts, tmp_path / "few.csv")
    _bad(crs("fit", tmp_path / "few.csv", "--model", "poly2", "--from", "bj54-gk39", "--to", "cgcs2000-gk39"),
         "poly2 needs at least 7 control points")
    (tmp_path / "broken.gpkg").write_bytes(b"\x00garbage")
    _bad(crs("file", tmp_path / "broken.gpkg", tmp_path / "o.gpkg", "--from", "cgcs2000", "--to", "wgs84"),
         "cannot read broken.gpkg")
    g = gpd.GeoDataFrame({"n": [1]}, geometry=[Point(116.4, 39.9)], crs="EPSG:4490")
    pyogrio.write_dataframe(g, tmp_path / "m.gpkg", layer="a")
    pyogrio.write_dataframe(g.to_crs(4527), tmp_path / "m.gpkg", layer="b")
    _bad(crs("file", tmp_path / "m.gpkg", tmp_path / "o.gpkg", "--from", "cgcs2000", "--to", "wgs84"), "mixed SRIDs")
