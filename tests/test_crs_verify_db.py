"""`crs verify FILE --table`: a file against a platform table, on a private scratch database.
Rows are moved inside transactions that are rolled back; the CLI runs as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely

from geo import migrate_db, verify_db
from geo.crs import files
from geo.crs.transform import build_transform
from tests.test_crs_cli import ROOT
from tests.test_crs_db import SCRATCH, URL, scratch_database

SCRATCH_V = SCRATCH + "_verify"


@pytest.fixture(scope="module")
def db():
    with scratch_database(SCRATCH_V) as conn:
        yield conn


@pytest.fixture
def tables(db):
    """500 sites (points, key `code`) and 3 areas (polygons, key `id`) in CGCS2000, like the platform;
    plus a geometry table outside the whitelist."""
    db.execute("DROP SCHEMA IF EXISTS crs_backup CASCADE")
    db.execute("DROP TABLE IF EXISTS geo_crsv_sites, geo_crsv_areas, crsv_outside")
    db.execute("CREATE TABLE geo_crsv_sites (code varchar(12) PRIMARY KEY, name text, geom geometry(Point, 4490), "
               "geom_3857 geometry(Point, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED)")
    db.execute("INSERT INTO geo_crsv_sites (code, name, geom) SELECT 'S' || lpad(i::text, 4, '0'), '点' || i, "
               "ST_SetSRID(ST_MakePoint(115.9 + (i % 25) * 0.05, 39.6 + (i / 25) * 0.05), 4490) "
               "FROM generate_series(0, 499) i")
    db.execute("CREATE TABLE geo_crsv_areas (id integer PRIMARY KEY, geom geometry(Polygon, 4490))")
    db.execute("INSERT INTO geo_crsv_areas SELECT i, ST_SetSRID(ST_Buffer(ST_MakePoint(116.3 + i * 0.1, 39.9), 0.02, 8), "
               "4490) FROM generate_series(1, 3) i")
    db.execute("CREATE TABLE crsv_outside (code text PRIMARY KEY, geom geometry(Point, 4490))")
    return db


def export(conn, table: str, key: str, path: Path, srid: int = 4490) -> Path:
    rows = conn.execute(f"SELECT {key}, ST_AsBinary(geom) FROM {table} ORDER BY 1").fetchall()
    g = gpd.GeoDataFrame({key: [r[0] for r in rows]}, geometry=shapely.from_wkb([bytes(r[1]) for r in rows]),
                         crs=f"EPSG:{srid}")
    pyogrio.write_dataframe(g, path)
    return path


def test_an_export_verifies_and_a_moved_row_fails(tables, tmp_path):
    f = export(tables, "geo_crsv_sites", "code", tmp_path / "sites.gpkg")
    r = verify_db.run(tables, f, "geo_crsv_sites")
    assert r.ok and r.n_file == r.n_table == len(r.offsets) == 500 and r.worst_m == 0.0
    assert "transverse Mercator" in r.metric and "central meridian 116.5°E" in r.metric
    with tables.transaction(force_rollback=True):
        # 1e-6 degree of latitude is about 0.111 m; 2e-7 about 0.022 m
        tables.execute("UPDATE geo_crsv_sites SET geom = ST_Translate(geom, 0, 1e-6) WHERE code = 'S0123'")
        tables.execute("UPDATE geo_crsv_sites SET geom = ST_Translate(geom, 2e-7, 0) WHERE code = 'S0007'")
        truth = dict(tables.execute(
            "SELECT t.code, ST_Distance(t.geom::geography, ST_SetSRID(ST_MakePoint(115.9 + (n % 25) * 0.05, "
            "39.6 + (n / 25) * 0.05), 4490)::geography) FROM geo_crsv_sites t, LATERAL (SELECT substr(t.code, 2)::int "
            "AS n) s WHERE t.code IN ('S0123', 'S0007')").fetchall())
        r = verify_db.run(tables, f, "geo_crsv_sites", tol_m=0.05)
    assert not r.ok and [k for k, _ in r.over] == ["S0123"] and not r.missing and not r.extra
    assert r.offsets[0] == ("S0123", pytest.approx(truth["S0123"], rel=1e-3))  # metres, as geodesic
    assert r.offsets[1] == ("S0007", pytest.approx(truth["S0007"], rel=1e-3))
    assert 0.10 < r.offsets[0][1] < 0.12 and 0.015 < r.offsets[1][1] < 0.05
    assert "1 of 500 matched features off by more than 0.05 m (worst S0123: 0.111" in r.summary()
    assert verify_db.run(tables, f, "geo_crsv_sites").ok  # rolled back: the table is as it was


def test_missing_and_extra_keys(tables, tmp_path):
    rows = tables.execute("SELECT code, ST_AsBinary(geom) FROM geo_crsv_sites WHERE code <> 'S0042'").fetchall()
    codes = [r[0] for r in rows] + ["X9999"]
    geoms = list(shapely.from_wkb([bytes(r[1]) for r in rows])) + [shapely.Point(116.4, 39.9)]
    pyogrio.write_dataframe(gpd.GeoDataFrame({"code": codes}, geometry=geoms, crs="EPSG:4490"), tmp_path / "s.geojson")
    r = verify_db.run(tables, tmp_path / "s.geojson", "geo_crsv_sites")
    assert not r.ok and r.missing == ["X9999"] and r.extra == ["S0042"] and not r.over
    assert r.n_file == 500 and r.n_table == 500 and len(r.offsets) == 499
    text = "\n".join(r.lines())
    assert "missing from the table (in the file only): X9999" in text and "extra in the table (not in the file): S0042" in text
    assert text.splitlines()[-1].startswith("FAILED: 0 of 499")


def test_polygons_by_hausdorff_and_an_integer_key(tables, tmp_path):
    f = export(tables, "geo_crsv_areas", "id", tmp_path / "areas.shp")
    r = verify_db.run(tables, f, "geo_crsv_areas", key="id", tol_m=0.1)
    assert r.ok and sorted(k for k, _ in r.offsets) == ["1", "2", "3"]
    with tables.transaction(force_rollback=True):  # one vertex of area 2 moves 2e-6 degree north (~0.22 m)
        tables.execute("UPDATE geo_crsv_areas SET geom = ST_MakePolygon(ST_SetPoint(ST_ExteriorRing(geom), 3, "
                       "ST_Translate(ST_PointN(ST_ExteriorRing(geom), 4), 0, 2e-6))) WHERE id = 2")
        r = verify_db.run(tables, f, "geo_crsv_areas", key="id", tol_m=0.1)
    assert [k for k, _ in r.over] == ["2"] and 0.1 < r.worst_m <= 0.223


def test_after_a_migration_the_converted_export_matches_in_grid_metres(tables, tmp_path):
    """The use case: export, convert the export with the same transform (`crs file`), migrate the
    table, then prove the table holds what the converted file says."""
    before = export(tables, "geo_crsv_sites", "code", tmp_path / "before.gpkg")
    t = build_transform("cgcs2000", "cgcs2000-gk39")
    files.write_dataset(files.transform_dataset(files.read_dataset(before), t), tmp_path / "after.gpkg", t.target)
    with pytest.raises(verify_db.VerifyInputError, match="is EPSG:4527 but geo_crsv_sites.geom is EPSG:4490"):
        verify_db.run(tables, tmp_path / "after.gpkg", "geo_crsv_sites")
    migrate_db.run(tables, "execute", "cgcs2000-gk39", tables=["geo_crsv_sites"])
    try:
        r = verify_db.run(tables, tmp_path / "after.gpkg", "geo_crsv_sites", tol_m=0.001)
        assert r.ok and r.worst_m < 1e-3 and "grid metres of EPSG:4527" in r.metric
    finally:
        migrate_db.run(tables, "rollback", "cgcs2000-gk39", None)


@pytest.mark.parametrize(("table", "column", "key", "text"), [
    ("geo_nosuch", "geom", "code", "geo_nosuch.geom is not a geometry column of a platform table"),
    ("crsv_outside", "geom", "code", "crsv_outside.geom is not a geometry column of a platform table"),
    ("geo_crsv_sites; DROP TABLE geo_crsv_areas", "geom", "code", "is not a geometry column"),
    ("geo_crsv_sites", "name", "code", "geo_crsv_sites.name is not a geometry column"),
    ("geo_crsv_sites", "geom", "nosuch", "geo_crsv_sites has no key column 'nosuch'"),
    ("geo_crsv_sites", "geom", 'code" FROM x; --', "has no key column"),
])
def test_bad_table_column_or_key(tables, tmp_path, table, column, key, text):
    f = export(tables, "geo_crsv_sites", "code", tmp_path / "s.gpkg")
    with pytest.raises(verify_db.VerifyInputError, match=text.replace(".", r"\.").replace("(", r"\(")):
        verify_db.run(tables, f, table, column, key)
    assert tables.execute("SELECT count(*) FROM geo_crsv_areas").fetchone()[0] == 3


def test_bad_files(tables, tmp_path):
    f = export(tables, "geo_crsv_sites", "code", tmp_path / "s.gpkg")
    with pytest.raises(verify_db.VerifyInputError, match="s.gpkg: no key column 'name'"):
        verify_db.run(tables, f, "geo_crsv_sites", key="name")
    g = gpd.GeoDataFrame({"code": ["A", "A"]}, geometry=[shapely.Point(116, 40)] * 2, crs="EPSG:4490")
    pyogrio.write_dataframe(g, tmp_path / "dup.gpkg")
    with pytest.raises(verify_db.VerifyInputError, match="not unique"):
        verify_db.run(tables, tmp_path / "dup.gpkg", "geo_crsv_sites")
    pyogrio.write_dataframe(g.iloc[:1], tmp_path / "two.gpkg", layer="a")
    pyogrio.write_dataframe(g.iloc[1:], tmp_path / "two.gpkg", layer="b")
    with pytest.raises(verify_db.VerifyInputError, match="2 layers"):
        verify_db.run(tables, tmp_path / "two.gpkg", "geo_crsv_sites")
    assert verify_db.run(tables, tmp_path / "two.gpkg", "geo_crsv_sites", layer="b").missing == ["A"]
    (tmp_path / "pts.csv").write_text("code,lng,lat\nS0000,115.9,39.6\nS0001,115.95,39.6\n", encoding="utf-8")
    r = verify_db.run(tables, tmp_path / "pts.csv", "geo_crsv_sites", x_col="lng", y_col="lat")
    assert r.worst_m < 1e-6 and len(r.extra) == 498 and any("carries no CRS" in n for n in r.notes)


# --- the command: real processes, real exit codes ----------------------------------------------

def _crs(*args) -> subprocess.CompletedProcess:
    if "/onemap?" not in URL:
        pytest.skip("cannot point DATABASE_URL at the scratch database")
    env = {**os.environ, "DATABASE_URL": URL.replace("/onemap?", f"/{SCRATCH_V}?")}
    return subprocess.run([sys.executable, "manage.py", "crs", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, env=env, check=False)


def test_cli_exit_codes(tables, tmp_path):
    f = export(tables, "geo_crsv_sites", "code", tmp_path / "s.gpkg")
    r = _crs("verify", f, "--table", "geo_crsv_sites", "--tol", "0.01")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].startswith("ok: 0 of 500 matched") and "500 rows in the table" in r.stdout
    tables.execute("UPDATE geo_crsv_sites SET geom = ST_Translate(geom, 1e-5, 0) WHERE code = 'S0300'")  # ~0.85 m
    r = _crs("verify", f, "--table", "geo_crsv_sites", "--column", "geom", "--key", "code")
    assert r.returncode == 1 and "worst offsets: S0300 0.85" in r.stdout
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "verify failed: 1 of 500" in r.stderr
    for args, text in [(["--table", "geo_nosuch"], "geo_nosuch.geom is not a geometry column"),
                       (["--table", "geo_crsv_sites", "--key", "nosuch"], "has no key column 'nosuch'"),
                       ([tmp_path / "s.gpkg", "--table", "geo_crsv_sites"], "not two")]:
        r = _crs("verify", f, *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and text in r.stderr, r.stderr
    (tmp_path / "broken.gpkg").write_bytes(b"\x00garbage")
    r = _crs("verify", tmp_path / "broken.gpkg", "--table", "geo_crsv_sites")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "cannot read broken.gpkg" in r.stderr
