"""`crs migrate-db` with a partitioned table like the position history: discovered once, through
its parent (never partition by partition), keyed by the primary-key column besides the partition
key; execute, verify and rollback reach every partition. On a private scratch database."""

from __future__ import annotations

import os

import numpy as np

from geo import migrate_db
from tests.crs_synthetic import beijing_lonlat
from tests.test_crs_db import bursa_file, scratch_database  # noqa: F401 (bursa_file is a fixture)

SCRATCH = os.environ.get("ONEMAP_TEST_DB", "test_onemap") + "_hcrs"


def _fingerprint(db) -> tuple:  # type: ignore[no-untyped-def]
    rows = db.execute("SELECT md5(string_agg(ST_AsEWKB(geom)::text, ',' ORDER BY id)), count(*)"
                      " FROM geo_crst_fixes").fetchone()
    types = db.execute("SELECT f_table_name, srid FROM geometry_columns WHERE f_table_name LIKE 'geo_crst_fixes%'"
                       " ORDER BY 1").fetchall()
    return rows, types


def test_a_partitioned_table_migrates_through_its_parent(bursa_file):  # noqa: F811
    with scratch_database(SCRATCH) as db:
        db.execute("CREATE TABLE geo_crst_fixes (id bigserial, recorded_at timestamptz NOT NULL,"
                   " geom geometry(Point, 4214) NOT NULL, PRIMARY KEY (id, recorded_at))"
                   " PARTITION BY RANGE (recorded_at)")
        db.execute("CREATE TABLE geo_crst_fixes_p1 PARTITION OF geo_crst_fixes"
                   " FOR VALUES FROM ('2031-01-01Z') TO ('2031-01-02Z')")
        db.execute("CREATE TABLE geo_crst_fixes_p2 PARTITION OF geo_crst_fixes"
                   " FOR VALUES FROM ('2031-01-02Z') TO ('2031-01-03Z')")
        db.execute("CREATE TABLE geo_crst_fixes_default PARTITION OF geo_crst_fixes DEFAULT")
        lon, lat = beijing_lonlat(300, seed=11)
        lon, lat = np.clip(lon, 115.8, 117.1), np.clip(lat, 39.7, 40.7)
        db.execute("INSERT INTO geo_crst_fixes (recorded_at, geom) SELECT '2031-01-01Z'::timestamptz"
                   " + i * interval '12 minutes', ST_SetSRID(ST_MakePoint(x, y), 4214)"
                   " FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS u(x, y, i)", (list(lon), list(lat)))
        placed = db.execute("SELECT tableoid::regclass::text, count(*) FROM geo_crst_fixes GROUP BY 1 ORDER BY 1").fetchall()
        assert [name for name, _ in placed] == ["geo_crst_fixes_default", "geo_crst_fixes_p1", "geo_crst_fixes_p2"]

        with db.cursor() as cur:
            found = migrate_db.discover(cur, None)
        assert [(c["table"], c["pk"]) for c in found] == [("geo_crst_fixes", "id")]

        before = _fingerprint(db)
        applied = migrate_db.run(db, "execute", "cgcs2000", bursa_file[0], tables=["geo_crst_fixes"])
        assert applied["outcome"].startswith("applied"), applied
        assert applied["columns"][0]["rows"] == 300 and applied["columns"][0]["roundtrip_max_m"] < 1e-3
        by_partition = db.execute("SELECT tableoid::regclass::text, ST_SRID(geom), count(*) FROM geo_crst_fixes"
                                  " GROUP BY 1, 2 ORDER BY 1").fetchall()
        assert [(name, srid) for name, srid, _ in by_partition] == [
            ("geo_crst_fixes_default", 4490), ("geo_crst_fixes_p1", 4490), ("geo_crst_fixes_p2", 4490)]
        assert migrate_db.run(db, "verify", "cgcs2000", None)["outcome"].startswith("verified")
        assert migrate_db.run(db, "rollback", "cgcs2000", None)["outcome"].startswith("rolled back")
        assert _fingerprint(db) == before
