"""Helpers for the tile tests: tile arithmetic, decoding served tiles, SQL counts to compare."""

from __future__ import annotations

import gzip
import math

import mapbox_vector_tile
import pytest
from django.db import connection

from tiles import cache as tile_cache

DEMO_PASSWORD = "onemap-demo"
# Dongcheng (东城区), by Tiananmen: tiles the fixtures fill with every layer.
CENTRE = (116.3975, 39.9087)
BUFFER_MARGIN = 64 / 4096


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    lat_r = math.radians(lat)
    y = int((1 - math.log(math.tan(lat_r) + 1 / math.cos(lat_r)) / math.pi) / 2 * n)
    return z, x, y


def decode(response) -> dict:  # type: ignore[no-untyped-def]
    body = response.content
    if response.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return mapbox_vector_tile.decode(body) if body else {}


def counts(tile: dict) -> dict[str, int]:
    return {name: len(layer["features"]) for name, layer in tile.items()}


def sql_ids(table: str, z: int, x: int, y: int, where: str = "TRUE", params: list | None = None,
            id_sql: str = "t.id", margin: float = BUFFER_MARGIN, exact: bool = True) -> set[int]:
    """The ids of the rows a tile must hold: those whose geometry lands in the buffered tile once
    in tile coordinates (exact), or (exact=False) that intersect an envelope with this margin."""
    inside = ("ST_AsMVTGeom(t.geom_3857, ST_TileEnvelope(%s, %s, %s), 4096, 64, true) IS NOT NULL" if exact
              else "ST_Intersects(t.geom_3857, ST_TileEnvelope(%s, %s, %s, margin => %s))")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {id_sql} FROM {table} t WHERE t.geom_3857 && ST_TileEnvelope(%s, %s, %s, margin => %s) "
            f"AND {inside} AND {where}",
            [z, x, y, margin + 1 / 4096, z, x, y, *([] if exact else [margin]), *(params or [])])
        return {row[0] for row in cursor.fetchall()}


def sql_points_inside(table: str, z: int, x: int, y: int, where: str = "TRUE", params: list | None = None) -> int:
    """Points strictly inside the tile (no buffer): what the tile's clusters must add up to."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {table} t, ST_TileEnvelope(%s, %s, %s) e WHERE t.geom_3857 && e "
            f"AND ST_X(t.geom_3857) >= ST_XMin(e) AND ST_X(t.geom_3857) < ST_XMax(e) "
            f"AND ST_Y(t.geom_3857) > ST_YMin(e) AND ST_Y(t.geom_3857) <= ST_YMax(e) AND {where}",
            [z, x, y, *(params or [])])
        return cursor.fetchone()[0]


def refresh_derived_tables(django_db_blocker) -> None:  # type: ignore[no-untyped-def]
    """Build the low-zoom tables once, committed (inside a test's rolled-back transaction every
    test would rebuild them)."""
    from django.core.management import call_command

    with django_db_blocker.unblock():
        call_command("refresh_tiles", verbosity=0)


def login_as(client, username: str):  # type: ignore[no-untyped-def]
    """Log in without the password hash (PBKDF2 costs most of a second per login)."""
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username=username))
    return client


# Fixtures shared by the tile test modules (they import them by name).
@pytest.fixture(scope="module", autouse=True)
def derived_tables(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    refresh_derived_tables(django_db_blocker)


@pytest.fixture(autouse=True)
def fresh_cache():  # type: ignore[no-untyped-def]
    from tiles.auth import forget_users

    tile_cache.reset()
    forget_users()  # a user deactivated inside a rolled-back test is active again
    yield
    tile_cache.reset()
    forget_users()
