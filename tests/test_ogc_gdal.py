"""GDAL reading the OGC API through a live server: ogrinfo, and ogr2ogr into the common targets
(GeoPackage, Shapefile, GeoJSON) with no warning for any collection (issue 13: a `tags` array became
a StringList that GeoPackage cannot hold)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from accounts.models import ApiToken
from geo.models import District
from tests.test_ogc import TAGS, build_world, destroy_world

# The database tests of this module make pytest-django set the test database up (a run of only
# non-database tests would leave the connection on the development database).
pytestmark = [pytest.mark.django_db, pytest.mark.skipif(shutil.which("ogr2ogr") is None, reason="no GDAL")]
# The test world (tests/test_ogc.py) and nothing of Beijing's fixtures.
WORLD_BBOX = ("99.85", "29.95", "100.15", "30.15")
# Every collection, and what a collection holds inside the world's box (officers that never
# reported have no geometry, so a bbox leaves them out).
WORLD_COUNTS = {"districts": 2, "streets": 3, "communities": 0, "gridcells": 0, "hotspots": 1, "cameras": 30,
                "officers": 6, "vehicles": 1}
# ogr2ogr's options per target (README, "Reading the OGC API with GDAL"): none, but a Shapefile's
# .dbf needs two, or data is lost with a mere warning: GDAL writes it in ISO-8859-1 (every Chinese
# name mangled), and a .dbf has no date-time type (opened_at, position_at would lose the time of
# day); as ISO 8601 text the times are kept exactly.
SHAPEFILE_OPTIONS = ["-lco", "ENCODING=UTF-8", "-mapFieldType", "DateTime=String"]
TARGETS = {"GPKG": [], "ESRI Shapefile": SHAPEFILE_OPTIONS, "GeoJSON": []}


@pytest.fixture(scope="module")
def ogc_server(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """A live server over committed data. Not pytest-django's `live_server`: that forces a
    transactional test whose flush would empty every table, the session's full fixtures included;
    this one commits its own world and deletes exactly that afterwards."""
    from django.db import connection
    from pytest_django.live_server_helper import LiveServer

    assert connection.settings_dict["NAME"] == connection.settings_dict["TEST"]["NAME"], "not the test database"
    with django_db_blocker.unblock():
        world = build_world()
        _, token = ApiToken.issue(world.city)
    server = LiveServer("localhost")
    try:
        yield SimpleNamespace(url=server.url, token=token)
    finally:
        server.stop()
        with django_db_blocker.unblock():
            destroy_world()


def run_ogrinfo(args: list[str], headers: str, blocker) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    env = {**os.environ, "GDAL_HTTP_HEADERS": headers}
    # The server thread reads the database: pytest-django blocks that outside db tests.
    with blocker.unblock():
        return subprocess.run(["ogrinfo", "-ro", *args], env=env, capture_output=True, text=True, timeout=120)


def ogrinfo(*args: str, token: str, blocker) -> str:  # type: ignore[no-untyped-def]
    result = run_ogrinfo(list(args), f"Authorization: Bearer {token}", blocker)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_gdal_reads_the_api(ogc_server, django_db_blocker):
    source = f"OAPIF:{ogc_server.url}/ogc/"
    listing = ogrinfo(source, token=ogc_server.token, blocker=django_db_blocker)
    for layer in ("districts", "cameras", "officers"):
        assert layer in listing

    with django_db_blocker.unblock():
        districts = District.objects.count()
    summary = ogrinfo("-so", source, "districts", token=ogc_server.token, blocker=django_db_blocker)
    assert f"Feature Count: {districts}" in summary
    # A full read, paged by GDAL through the next links (5 per page).
    features = ogrinfo("-al", "-q", "-oo", "PAGE_SIZE=5", source, "districts", token=ogc_server.token,
                       blocker=django_db_blocker)
    assert features.count("OGRFeature(districts)") == districts
    assert "110198" in features and "Test East" in features


def test_gdal_without_a_token_is_refused(ogc_server, django_db_blocker):
    result = run_ogrinfo(["-so", f"OAPIF:{ogc_server.url}/ogc/"], "", django_db_blocker)
    assert result.returncode != 0
    assert "401" in result.stderr or "Unauthorized" in result.stderr


def ogr2ogr(target: str, out: Path, source: str, layer: str, token: str, blocker) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    env = {**os.environ, "GDAL_HTTP_HEADERS": f"Authorization: Bearer {token}"}
    with blocker.unblock():
        return subprocess.run(["ogr2ogr", "-f", target, *TARGETS[target], str(out), source, layer,
                               "-spat", *WORLD_BBOX],
                              env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("target", TARGETS)
def test_ogr2ogr_takes_every_collection_without_a_warning(ogc_server, django_db_blocker, tmp_path, target):
    """GDAL's defaults, one layer at a time (GeoJSON holds one layer per file): exit 0, nothing on
    stderr, every feature there, and the tags read back exactly."""
    source = f"OAPIF:{ogc_server.url}/ogc"
    for layer, expected in WORLD_COUNTS.items():
        out = tmp_path / f"{layer}.{'json' if target == 'GeoJSON' else 'gpkg' if target == 'GPKG' else 'shp'}"
        result = ogr2ogr(target, out, source, layer, ogc_server.token, django_db_blocker)
        assert result.returncode == 0 and result.stderr == "", (target, layer, result.stderr)
        info = subprocess.run(["ogrinfo", "-ro", "-al", str(out)], capture_output=True, text=True, timeout=60)
        assert info.returncode == 0, info.stderr
        assert f"Feature Count: {expected}" in info.stdout or (expected == 0 and "Feature Count" not in info.stdout), \
            (target, layer, info.stdout[:500])
        if layer == "hotspots" and target == "GeoJSON":
            # GeoJSON holds lists: GDAL writes the JSON text back as the array it is.
            assert json.loads(out.read_text())["features"][0]["properties"]["tags"] == TAGS
        elif layer == "hotspots":
            assert json.dumps(TAGS, ensure_ascii=False, separators=(",", ":")) in info.stdout, info.stdout
