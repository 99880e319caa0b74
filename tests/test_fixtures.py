"""The deterministic Beijing fixtures as loaded by tests/conftest.py (load_fixtures): counts, codes,
exact tilings, valid CGCS2000 geometries, points inside their cells, idempotent and reproducible
loads, and account profiles that survive a forced reload."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
import shapely
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from fixtures.generate import FIXTURE_NAME, generate, seed_from_env
from fixtures.generate.load import fixture_tables
from tests.sql_support import rows, scalar

pytestmark = pytest.mark.django_db

POLYGON_TABLES = ["geo_district", "geo_street", "geo_community", "geo_gridcell"]
POINT_TABLES = ["geo_hotspotpoint", "geo_camera", "geo_complaint", "geo_enforcementcase"]
TILING_TOLERANCE = 1e-9  # relative area: float noise of the overlay, far below one square metre


@pytest.fixture(scope="module")
def generated():  # type: ignore[no-untyped-def]
    """The same fixture set, generated again in memory (the seed the session loaded with)."""
    return generate(seed_from_env())


def test_counts() -> None:
    assert scalar("SELECT count(*) FROM geo_district") == 16
    assert scalar("SELECT count(*) FROM geo_street") == 349
    assert scalar("SELECT count(*) FROM geo_community") == 7535
    assert scalar("SELECT count(*) FROM geo_hotspotpoint") == 6815
    assert scalar("SELECT count(*) FROM geo_camera") == 141_800
    assert scalar("SELECT count(*) FROM geo_enforcementunit") == 20
    assert 7_500 <= scalar("SELECT count(*) FROM geo_officer") <= 8_500
    assert 1_300 <= scalar("SELECT count(*) FROM geo_vehicle") <= 1_700
    assert 25_000 <= scalar("SELECT count(*) FROM geo_gridcell") <= 60_000
    assert 250_000 <= scalar("SELECT count(*) FROM geo_complaint") <= 350_000
    assert 100_000 <= scalar("SELECT count(*) FROM geo_enforcementcase") <= 200_000


def test_street_kinds_and_synthetic_flags() -> None:
    kinds = dict(rows("SELECT kind, count(*) FROM geo_street GROUP BY kind"))
    assert kinds["street"] == 165 and kinds["town"] > 100 and kinds["township"] > 10 and kinds["area"] > 50
    for table in ["geo_street", "geo_community", "geo_gridcell"]:
        assert scalar(f"SELECT bool_and(synthetic) FROM {table}")


def test_grid_codes() -> None:
    cells = rows("SELECT code, community_id, street_id, district_id FROM geo_gridcell")
    pattern = re.compile(r"^1101\d{11}$")
    assert len({c for c, *_ in cells}) == len(cells)
    for code, community, street, district in cells:
        assert pattern.match(code), code
        assert code.startswith(community) and community.startswith(street) and street.startswith(district)
        assert int(code[12:]) >= 1
    # Every community has cells, numbered 001..n without gaps.
    gaps = scalar("""SELECT count(*) FROM (SELECT community_id, count(*) n, max(right(code, 3)::int) top
                     FROM geo_gridcell GROUP BY community_id) c WHERE n <> top""")
    assert gaps == 0
    assert scalar("SELECT count(*) FROM geo_community c WHERE NOT EXISTS "
                  "(SELECT 1 FROM geo_gridcell g WHERE g.community_id = c.code)") == 0


def test_grid_numbering_runs_west_to_east_north_to_south() -> None:
    """In the 250 m core, unmerged full cells sit on one lattice square each: their (row from the
    north, column from the west) must increase with the sequence number."""
    full = rows("""
        SELECT community_id, code, floor(ST_Y(c) / 250)::int AS row_n, floor(ST_X(c) / 250)::int AS col
        FROM (SELECT community_id, code, ST_Centroid(ST_Transform(geom, 4548)) c, ST_Area(ST_Transform(geom, 4548)) a
              FROM geo_gridcell WHERE district_id IN ('110101', '110102')) t
        WHERE abs(a - 62500) < 50 ORDER BY community_id, code""")
    assert len(full) > 100
    checked = 0
    for (comm_a, _, row_a, col_a), (comm_b, code_b, row_b, col_b) in zip(full, full[1:], strict=False):
        if comm_a == comm_b:
            assert (-row_a, col_a) < (-row_b, col_b), code_b
            checked += 1
    assert checked > 50


def test_geometries_valid_cgcs2000_with_web_mercator_copy() -> None:
    for table in POLYGON_TABLES + POINT_TABLES + ["geo_officer", "geo_vehicle"]:
        bad = scalar(f"SELECT count(*) FROM {table} WHERE geom IS NULL OR NOT ST_IsValid(geom) OR ST_SRID(geom) <> 4490")
        assert bad == 0, table
    # Complaints and cases are analysed, not tiled: they have no Web Mercator copy.
    for table in POLYGON_TABLES + ["geo_hotspotpoint", "geo_camera", "geo_officer", "geo_vehicle"]:
        assert scalar(f"SELECT count(*) FROM {table} WHERE geom_3857 IS NULL OR ST_SRID(geom_3857) <> 3857") == 0, table
    for table in POLYGON_TABLES:
        assert scalar(f"SELECT bool_and(GeometryType(geom) = 'MULTIPOLYGON' AND NOT ST_IsEmpty(geom)) FROM {table}")


def assert_tiles(parents: str, children: str, link: str) -> None:
    """Per parent: the union of its children equals it (symmetric difference ~0) and the children's
    areas add up to its area (so they do not overlap)."""
    worst = rows(f"""
        SELECT p.code, abs(ST_Area(p.geom) - sum(ST_Area(c.geom))) / ST_Area(p.geom),
               ST_Area(ST_SymDifference(p.geom, ST_Union(c.geom))) / ST_Area(p.geom) AS sym
        FROM {parents} p JOIN {children} c ON c.{link} = p.code GROUP BY p.code, p.geom
        ORDER BY greatest(abs(ST_Area(p.geom) - sum(ST_Area(c.geom))) / ST_Area(p.geom),
                          ST_Area(ST_SymDifference(p.geom, ST_Union(c.geom))) / ST_Area(p.geom)) DESC LIMIT 1""")
    code, area_gap, sym = worst[0]
    assert area_gap < TILING_TOLERANCE and sym < TILING_TOLERANCE, (code, area_gap, sym)


def test_streets_tile_districts() -> None:
    assert_tiles("geo_district", "geo_street", "district_id")


def test_communities_tile_streets() -> None:
    assert_tiles("geo_street", "geo_community", "street_id")


def test_grid_cells_tile_communities() -> None:
    gap = scalar("""SELECT max(abs(ST_Area(m.geom) - s.total) / ST_Area(m.geom))
                    FROM geo_community m JOIN (SELECT community_id, sum(ST_Area(geom)) total FROM geo_gridcell
                                               GROUP BY community_id) s ON s.community_id = m.code""")
    assert gap < 1e-7
    # A full union check on the old city (the finest grid).
    assert_tiles("(SELECT * FROM geo_community WHERE district_id = '110101')", "geo_gridcell", "community_id")


def test_districts_do_not_overlap() -> None:
    overlap = scalar("""SELECT coalesce(max(ST_Area(ST_Intersection(a.geom, b.geom)) / least(ST_Area(a.geom), ST_Area(b.geom))), 0)
                        FROM geo_district a JOIN geo_district b ON a.code < b.code AND ST_Intersects(a.geom, b.geom)""")
    assert overlap < 1e-6


@pytest.mark.parametrize("table", POINT_TABLES)
def test_points_inside_their_cell_street_and_district(table: str) -> None:
    outside_cell = scalar(f"""SELECT count(*) FROM {table} p JOIN geo_gridcell g ON g.code = p.grid_cell_id
                              WHERE NOT ST_Covers(g.geom, p.geom) OR g.street_id <> p.street_id
                              OR g.district_id <> p.district_id""")
    assert outside_cell == 0
    assert scalar(f"SELECT count(*) FROM {table} WHERE grid_cell_id IS NULL OR street_id IS NULL") == 0
    outside_street = scalar(f"""SELECT count(*) FROM (SELECT * FROM {table} WHERE mod(id, 20) = 0) p
                                JOIN geo_street s ON s.code = p.street_id JOIN geo_district d ON d.code = p.district_id
                                WHERE NOT ST_Covers(s.geom, p.geom) OR NOT ST_Covers(d.geom, p.geom)""")
    assert outside_street == 0


@pytest.mark.parametrize("table", ["geo_officer", "geo_vehicle"])
def test_field_units_positioned_in_their_street(table: str) -> None:
    assert scalar(f"""SELECT count(*) FROM {table} u JOIN geo_street s ON s.code = u.street_id
                      WHERE NOT ST_Covers(s.geom, u.geom) OR u.position_at IS NULL""") == 0
    assert scalar(f"SELECT count(DISTINCT device_id) = count(*) AND count(DISTINCT call_sign) = count(*) FROM {table}")
    units = dict(rows(f"SELECT unit_id, count(*) FROM {table} GROUP BY unit_id"))
    assert set(units) <= {code for (code,) in rows("SELECT code FROM geo_enforcementunit")}


def test_resource_details() -> None:
    sources = dict(rows("SELECT source, count(*) FROM geo_camera GROUP BY source"))
    assert 0.65 < sources["police_shared"] / 141_800 < 0.75
    assert 0.55 < scalar("SELECT avg((heading IS NOT NULL)::int) FROM geo_camera") < 0.65
    assert scalar("SELECT count(*) FROM geo_camera WHERE stream_url <> 'rtsp://video.onemap.internal/' || code") == 0
    assert scalar("SELECT count(*) FROM geo_hotspotpoint WHERE tags @> ARRAY['50+N']::varchar[]") >= 50
    assert scalar("SELECT count(*) FROM geo_hotspotpoint WHERE (status = 'closed') <> (closed_at IS NOT NULL)") == 0
    assert scalar("SELECT count(*) FROM geo_enforcementcase WHERE (kind = 'penalty') <> (fine_yuan IS NOT NULL)") == 0
    off_site = scalar("SELECT avg(off_site::int) FROM geo_enforcementcase")
    assert 0.4 < off_site < 0.5
    first, last = rows("""SELECT avg(off_site::int) FILTER (WHERE occurred_at < min_t + interval '60 days'),
                                 avg(off_site::int) FILTER (WHERE occurred_at > max_t - interval '60 days')
                          FROM geo_enforcementcase, (SELECT min(occurred_at) min_t, max(occurred_at) max_t
                                                     FROM geo_enforcementcase) b""")[0]
    assert float(last) > float(first) + 0.15
    assert scalar("SELECT avg((source = '12345')::int) FROM geo_complaint") > 0.8


def test_second_load_is_a_no_op(capsys) -> None:  # type: ignore[no-untyped-def]
    from geo.models import FixtureLoad

    before = FixtureLoad.objects.get(name=FIXTURE_NAME)
    counts = {t: scalar(f"SELECT count(*) FROM {t}") for t in fixture_tables()}
    call_command("load_fixtures")
    assert "fixtures up to date" in capsys.readouterr().out
    after = FixtureLoad.objects.get(name=FIXTURE_NAME)
    assert (after.checksum, after.loaded_at, after.counts) == (before.checksum, before.loaded_at, before.counts)
    assert {t: scalar(f"SELECT count(*) FROM {t}") for t in fixture_tables()} == counts
    assert after.counts == counts


def digest(values: list) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()


def test_load_matches_the_generator(generated) -> None:  # type: ignore[no-untyped-def]
    """What the database holds equals what the generator produces again in memory."""
    assert scalar("SELECT checksum FROM geo_fixtureload WHERE name = %s", [FIXTURE_NAME]) == generated.checksum
    cells = generated.table("geo_gridcell").columns
    assert digest(sorted(cells["code"].tolist())) == digest([c for (c,) in rows("SELECT code FROM geo_gridcell ORDER BY code")])
    sample = list(range(0, len(cells["code"]), 997))
    db_wkb = dict(rows("SELECT code, ST_AsHexEWKB(geom) FROM geo_gridcell WHERE code = ANY(%s)", [cells["code"][sample].tolist()]))
    mem_wkb = shapely.to_wkb(shapely.set_srid(cells["geom"][sample], 4490), hex=True, include_srid=True)
    assert [db_wkb[c] for c in cells["code"][sample]] == mem_wkb.tolist()
    for table, cols in [("geo_camera", ["code", "name", "source", "grid_cell_id"]),
                        ("geo_complaint", ["category", "source", "grid_cell_id"]),
                        ("geo_officer", ["name", "badge", "device_id", "unit_id"])]:
        mem = generated.table(table).columns
        ids = np.arange(1, len(mem[cols[0]]) + 1, 1009)
        # An officer's geometry is its latest position: live data that tests with real servers move
        # (committed), so only its identity is compared.
        live = table == "geo_officer"
        geom_sql = "" if live else ", ST_X(geom), ST_Y(geom)"
        db = rows(f"SELECT {', '.join(cols)}{geom_sql} FROM {table} WHERE id = ANY(%s) ORDER BY id", [ids.tolist()])
        expected = [tuple(mem[c][i - 1] for c in cols) + (() if live else (mem["geom"][i - 1].x, mem["geom"][i - 1].y))
                    for i in ids]
        assert digest([tuple(map(str, r)) for r in db]) == digest([tuple(map(str, r)) for r in expected]), table


def test_profiles_survive_a_forced_reload() -> None:
    """accounts_profile points at districts, streets and officers (PROTECT / SET_NULL): a --force
    reload must keep them, with the same rows behind the same keys."""
    from accounts.models import Profile

    user = get_user_model().objects.create_user("fixture-reload-check", password="x" * 12)
    officer_id, device = rows("""SELECT id, device_id FROM geo_officer WHERE district_id = '110101' AND id NOT IN
        (SELECT officer_id FROM accounts_profile WHERE officer_id IS NOT NULL) ORDER BY id LIMIT 1""")[0]
    profile = Profile.objects.create(user=user, role="field_officer", district_id="110101", street_id="110101001",
                                     officer_id=officer_id)
    call_command("load_fixtures", force=True, verbosity=0)
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # run the deferred foreign-key checks now
    profile.refresh_from_db()
    assert (profile.district_id, profile.street_id, profile.officer_id) == ("110101", "110101001", officer_id)
    assert scalar("SELECT device_id FROM geo_officer WHERE id = %s", [officer_id]) == device
