"""migrate-db and the PostGIS side of the pipelines, on a private scratch database (created here,
dropped at the end) so neither the fixtures nor other developers' test databases are touched."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import psycopg
import pytest
from pyproj import Transformer

from config.env import database_from_url, local_database_url
from geo import migrate_db
from geo.crs.fit import fit
from geo.crs.models import apply_params, save_params
from geo.crs.transform import DatumShiftRefused
from tests.crs_synthetic import beijing_lonlat, bursa_points, helmert_points

SCRATCH = os.environ.get("ONEMAP_TEST_DB", "test_onemap") + "_crs"
URL = os.environ.get("DATABASE_URL") or local_database_url()


def _conninfo(dbname: str) -> str:
    d = database_from_url(URL)
    return psycopg.conninfo.make_conninfo(dbname=dbname, user=d["USER"] or None, host=d["HOST"] or None,
                                          port=d["PORT"] or None, password=d["PASSWORD"] or None)


@contextmanager
def scratch_database(name: str) -> Iterator[psycopg.Connection]:
    """A fresh PostGIS database of its own (the migration rewrites whole tables), dropped after."""
    try:
        admin = psycopg.connect(_conninfo("postgres"), autocommit=True)
    except psycopg.OperationalError as e:
        pytest.skip(f"no PostgreSQL: {e}")
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    conn = psycopg.connect(_conninfo(name), autocommit=True)
    conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    try:
        yield conn
    finally:
        conn.close()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


@pytest.fixture(scope="module")
def db():
    with scratch_database(SCRATCH) as conn:
        yield conn


@pytest.fixture
def tables(db):
    """Two bj54 tables; the points have a generated 3857 copy with a GiST index, like the platform."""
    db.execute("DROP SCHEMA IF EXISTS crs_backup CASCADE")
    db.execute("DROP TABLE IF EXISTS geo_crst_points, geo_crst_areas")
    db.execute("CREATE TABLE geo_crst_points (id serial PRIMARY KEY, name text, geom geometry(Point, 4214) NOT NULL, "
               "geom_3857 geometry(Point, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED)")
    db.execute("CREATE INDEX crst_points_3857_gist ON geo_crst_points USING gist (geom_3857)")
    db.execute("CREATE TABLE geo_crst_areas (code text PRIMARY KEY, geom geometry(MultiPolygon, 4214))")
    lon, lat = beijing_lonlat(2000, seed=7)
    lon, lat = np.clip(lon, 115.8, 117.1), np.clip(lat, 39.7, 40.7)
    with db.cursor() as cur, cur.copy("COPY geo_crst_points (name, geom) FROM STDIN") as cp:
        for i, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True)):
            cp.write_row((f"点{i}", f"SRID=4214;POINT({x!r} {y!r})"))
    db.execute("INSERT INTO geo_crst_areas VALUES ('110101', ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(116.4, 39.9), "
               "4214), 0.05))), ('110105', ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(116.5, 39.95), 4214), 0.03))), "
               "('110000', NULL)")
    return db


def _snapshot(db) -> tuple:
    rows = db.execute("SELECT md5(string_agg(ST_AsEWKB(geom)::text || coalesce(ST_AsEWKB(geom_3857)::text, ''), ',' "
                      "ORDER BY id)) FROM geo_crst_points").fetchone()
    areas = db.execute("SELECT md5(string_agg(coalesce(ST_AsEWKB(geom)::text, 'null'), ',' ORDER BY code)) "
                       "FROM geo_crst_areas").fetchone()
    cols = db.execute("SELECT table_name, column_name, udt_name, is_generated FROM information_schema.columns "
                      "WHERE table_name LIKE 'geo_crst_%' ORDER BY 1, 2").fetchall()
    types = db.execute("SELECT f_table_name, f_geometry_column, srid FROM geometry_columns WHERE f_table_name "
                       "LIKE 'geo_crst_%' ORDER BY 1, 2").fetchall()
    idx = db.execute("SELECT indexname FROM pg_indexes WHERE tablename LIKE 'geo_crst_%' ORDER BY 1").fetchall()
    backups = db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'crs_backup' AND tablename <> 'migration'"
                         ).fetchone()
    return rows, areas, cols, types, idx, backups


@pytest.fixture(scope="module")
def bursa_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("crs") / "bj54_cgcs2000.json"
    return str(path), save_params(fit(bursa_points(), "bursa7", "bj54", "cgcs2000").doc, path)


def test_postgis_applies_the_bursa_parameters_like_pyproj_and_numpy(db, bursa_file):
    _, doc = bursa_file
    lon, lat = np.clip(beijing_lonlat(200, seed=3), [[115.8], [39.7]], [[117.1], [40.7]])
    src, dst = migrate_db.bursa_proj_strings(doc)
    rows = db.execute("SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(x, y), 4214), %s, %s) g "
                      "FROM unnest(%s::float8[], %s::float8[]) AS u(x, y)) s", (src, dst, list(lon), list(lat))).fetchall()
    pg = np.array(rows).T
    pp = np.array(Transformer.from_pipeline(doc["proj_pipeline"]).transform(lon, lat))
    nx = np.array(apply_params(doc, lon, lat))
    for other in (pp, nx):
        d = (pg - other) * 111_320.0
        d[0] *= np.cos(np.radians(lat))
        assert np.max(np.hypot(*d)) < 1e-3


def test_postgis_applies_helmert4_like_pyproj(db):
    doc = fit(helmert_points(), "helmert4", "bj54-gk39", "cgcs2000-gk39").doc
    col = migrate_db.sql.Identifier("g")
    expr = migrate_db._sql_expr(col, 2415, 4527, doc, type("T", (), {"steps": []})())
    x, y = helmert_points().src[:5, 0], helmert_points().src[:5, 1]
    q = migrate_db.sql.SQL("SELECT ST_X(e), ST_Y(e) FROM (SELECT {e} AS e FROM (SELECT ST_SetSRID(ST_MakePoint(x, y), "
                           "2415) AS g FROM unnest(%s::float8[], %s::float8[]) AS u(x, y)) s) t").format(e=expr)
    pg = np.array(db.execute(q, (list(x), list(y))).fetchall()).T
    pp = np.array(Transformer.from_pipeline(doc["proj_pipeline"]).transform(x, y))
    assert np.max(np.abs(pg - pp)) < 1e-3


def test_dry_run_changes_nothing(tables, bursa_file):
    before = _snapshot(tables)
    s = migrate_db.run(tables, "dry-run", "cgcs2000", bursa_file[0], tables=["geo_crst_points", "geo_crst_areas"])
    assert s["outcome"].startswith("dry run") and {c["rows"] for c in s["columns"]} == {2000, 3}
    assert _snapshot(tables) == before


def test_execute_verify_rollback(tables, bursa_file):
    before = _snapshot(tables)
    names = ["geo_crst_points", "geo_crst_areas"]
    s = migrate_db.run(tables, "execute", "cgcs2000", bursa_file[0], tables=names)
    assert s["outcome"].startswith("applied")
    assert all(c["roundtrip_max_m"] < 1e-3 and c["srid_after"] == 4490 for c in s["columns"])
    srids = tables.execute("SELECT DISTINCT ST_SRID(geom), ST_SRID(geom_3857) FROM geo_crst_points").fetchall()
    assert srids == [(4490, 3857)]
    assert tables.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'crst_points_3857_gist'").fetchone()[0] == 1
    # the shift is the datum shift: tens of metres
    moved = tables.execute("SELECT max(ST_Distance(t.geom::geography, ST_SetSRID(b.geom, 4490)::geography)) FROM "
                           "geo_crst_points t JOIN crs_backup.b1_1 b ON b.pk = t.id").fetchone()[0]
    assert 10 < moved < 200
    v = migrate_db.run(tables, "verify", "cgcs2000", None)
    assert v["outcome"].startswith("verified")
    r = migrate_db.run(tables, "rollback", "cgcs2000", None)
    assert r["outcome"].startswith("rolled back")
    assert _snapshot(tables) == before


def test_forced_failure_mid_way_leaves_the_database_unchanged(tables, bursa_file):
    before = _snapshot(tables)
    with pytest.raises(migrate_db.MigrationError, match="forced failure"):
        migrate_db.run(tables, "execute", "cgcs2000", bursa_file[0], tables=["geo_crst_areas", "geo_crst_points"],
                       fail_after=1)
    assert _snapshot(tables) == before
    assert tables.execute("SELECT to_regclass('crs_backup.migration')").fetchone()[0] is None


def test_numpy_path_for_poly2_and_projected_target(tables, tmp_path):
    doc = save_params(fit(helmert_points(), "poly2", "bj54-gk39", "cgcs2000-gk39").doc, tmp_path / "p.json")
    before = _snapshot(tables)
    s = migrate_db.run(tables, "execute", "cgcs2000-gk39", str(tmp_path / "p.json"), tables=["geo_crst_points"])
    assert s["columns"][0]["srid_after"] == 4527 and s["columns"][0]["roundtrip_max_m"] < 1e-3
    del doc
    migrate_db.run(tables, "rollback", "cgcs2000-gk39", None)
    assert _snapshot(tables) == before


def test_refusals(tables, bursa_file):
    with pytest.raises(DatumShiftRefused, match="--params"):
        migrate_db.run(tables, "dry-run", "cgcs2000", None, tables=["geo_crst_points"])
    tables.execute("ALTER TABLE geo_crst_areas ALTER COLUMN geom TYPE geometry(MultiPolygon, 4490) "
                   "USING ST_SetSRID(geom, 4490)")
    with pytest.raises(migrate_db.MigrationError, match="mixed SRIDs"):
        migrate_db.run(tables, "dry-run", "cgcs2000", bursa_file[0], tables=["geo_crst_points", "geo_crst_areas"])
    with pytest.raises(migrate_db.MigrationError, match="no applied migration"):
        migrate_db.run(tables, "rollback", "cgcs2000", None)


def test_cli_exit_code_and_one_line_on_the_scratch_database(tables):
    env = {**os.environ, "DATABASE_URL": URL.replace("/onemap?", f"/{SCRATCH}?") if "/onemap?" in URL else URL}
    if env["DATABASE_URL"] == URL:
        pytest.skip("cannot point DATABASE_URL at the scratch database")
    r = subprocess.run([sys.executable, "manage.py", "crs", "migrate-db", "--to", "cgcs2000", "--dry-run",
                        "--tables", "geo_crst_points"], capture_output=True, text=True, env=env, check=False)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--params" in r.stderr


@pytest.fixture
def live_fixes(db):
    """A fix log named like the platform's, written into a minute ago (as live ingest does)."""
    db.execute("DROP SCHEMA IF EXISTS crs_backup CASCADE")
    db.execute("DROP TABLE IF EXISTS geo_positionfix")
    db.execute("CREATE TABLE geo_positionfix (id serial PRIMARY KEY, received_at timestamptz NOT NULL, "
               "geom geometry(Point, 4214) NOT NULL)")
    db.execute("INSERT INTO geo_positionfix (received_at, geom) SELECT now() - i * interval '1 hour', "
               "ST_SetSRID(ST_MakePoint(116.3 + i * 0.01, 39.9), 4214) FROM generate_series(0, 9) i")
    db.execute("UPDATE geo_positionfix SET received_at = now() - interval '1 minute' WHERE id <= 3")
    yield db
    db.execute("DROP TABLE IF EXISTS geo_positionfix")
    db.execute("DROP SCHEMA IF EXISTS crs_backup CASCADE")


def test_dry_run_warns_of_live_ingest_and_of_srids_the_models_do_not_declare(live_fixes, bursa_file):
    s = migrate_db.run(live_fixes, "dry-run", "cgcs2000-gk39", bursa_file[0], tables=["geo_positionfix"],
                       declared={("geo_positionfix", "geom"): 4490})
    assert s["outcome"].startswith("dry run")
    srid, live = s["warnings"]
    assert "target SRID 4527 differs from what the Django models declare" in srid and "(models: 4490)" in srid
    assert "live ingest is writing into geo_positionfix (3 row(s) with received_at in the last 600 s" in live
    assert "pause it first" in live and "device_token --revoke" in live
    from geo.crs.report import migration_report

    assert migration_report(s).count("**Warning:**") == 2
    # the SRID the models declare: no SRID warning; old rows only: no live warning
    live_fixes.execute("UPDATE geo_positionfix SET received_at = now() - interval '2 hours'")
    s = migrate_db.run(live_fixes, "dry-run", "cgcs2000", bursa_file[0], tables=["geo_positionfix"],
                       declared={("geo_positionfix", "geom"): 4490})
    assert s["warnings"] == []


def test_execute_refuses_while_ingest_writes_unless_allowed(live_fixes, bursa_file):
    with pytest.raises(migrate_db.MigrationError, match=r"live ingest is writing into geo_positionfix.*--allow-live-writes"):
        migrate_db.run(live_fixes, "execute", "cgcs2000", bursa_file[0], tables=["geo_positionfix"])
    assert live_fixes.execute("SELECT DISTINCT ST_SRID(geom) FROM geo_positionfix").fetchall() == [(4214,)]
    s = migrate_db.run(live_fixes, "execute", "cgcs2000", bursa_file[0], tables=["geo_positionfix"],
                       allow_live_writes=True)
    assert s["outcome"].startswith("applied") and "live ingest" in s["warnings"][0]


def test_cli_dry_run_prints_the_warnings_on_stderr(live_fixes, bursa_file):
    env = {**os.environ, "DATABASE_URL": URL.replace("/onemap?", f"/{SCRATCH}?") if "/onemap?" in URL else URL}
    if env["DATABASE_URL"] == URL:
        pytest.skip("cannot point DATABASE_URL at the scratch database")
    r = subprocess.run([sys.executable, "manage.py", "crs", "migrate-db", "--to", "cgcs2000-gk39", "--params",
                        bursa_file[0], "--dry-run", "--tables", "geo_positionfix"], capture_output=True, text=True,
                       env=env, check=False)
    assert r.returncode == 0, r.stderr
    warnings = r.stderr.strip().splitlines()
    assert len(warnings) == 2 and all(w.startswith("WARNING: ") for w in warnings)
    assert "models: 4490" in warnings[0] and "live ingest is writing into geo_positionfix" in warnings[1]
    assert "dry run: nothing changed" in r.stdout
