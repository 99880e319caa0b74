"""Tasks on the map: the `tasks` tile layer and the `tasks` OGC collection are registry entries,
scoped to the jurisdiction like the other ledgers (decoded MVT bytes, GeoJSON items)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import Profile, Role
from tests.dispatch_support import Dongcheng, dongcheng  # noqa: F401
from tests.test_dispatch_loop import create
from tests.tiles_support import decode, tile_of

pytestmark = pytest.mark.django_db


def other_street_client() -> Client:
    user = get_user_model().objects.create(username="test_jingshan_live")
    Profile.objects.create(user=user, role=Role.STREET_DISPATCHER, district_id="110101", street_id="110101002")
    client = Client()
    client.force_login(user)
    return client


def test_a_new_task_is_in_its_live_tile_for_its_jurisdiction_only(dongcheng: Dongcheng) -> None:  # noqa: F811
    task = create(dongcheng)
    z, x, y = tile_of(dongcheng.lon, dongcheng.lat, 16)
    tile = decode(dongcheng.clients["donghuamen"].get(f"/tiles/tasks/{z}/{x}/{y}.mvt"))
    features = {f["id"]: f["properties"] for f in tile["tasks"]["features"]}
    assert features[task["id"]]["number"] == task["number"]
    assert features[task["id"]]["state"] == "reported" and features[task["id"]]["category"] == "E0501"
    outside = decode(other_street_client().get(f"/tiles/tasks/{z}/{x}/{y}.mvt"))
    assert task["id"] not in {f["id"] for f in outside.get("tasks", {"features": []})["features"]}


def test_the_tasks_collection_is_scoped_and_filtered(dongcheng: Dongcheng) -> None:  # noqa: F811
    task = create(dongcheng)
    items = dongcheng.clients["donghuamen"].get("/ogc/collections/tasks/items?state=reported&limit=1000").json()
    found = {f["id"]: f for f in items["features"]}
    assert found[task["id"]]["properties"]["number"] == task["number"]
    assert found[task["id"]]["geometry"]["coordinates"] == pytest.approx([dongcheng.lon, dongcheng.lat])
    closed = dongcheng.clients["donghuamen"].get("/ogc/collections/tasks/items?state=closed&limit=1000").json()
    assert task["id"] not in {f["id"] for f in closed["features"]}
    outside = other_street_client().get("/ogc/collections/tasks/items?limit=1000").json()
    assert task["id"] not in {f["id"] for f in outside["features"]}
