"""/healthz and /readyz against the real database (and a Redis address where nothing listens).
The outages themselves are in tests/test_faults_*.py."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_anything(django_assert_num_queries):  # type: ignore[no-untyped-def]
    with django_assert_num_queries(0):
        response = Client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert Client().post("/healthz").status_code == 405


def test_readyz_checks_the_database_and_redis(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.REDIS_URL = ""
    response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["database"] == "ok"

    settings.REDIS_URL = f"unix://{tmp_path}/nothing-listens.sock"
    response = Client().get("/readyz")
    assert response.status_code == 503 and response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "2"
    body = response.json()
    assert body["down"] == ["redis"] and body["checks"]["database"] == "ok", body
    assert body["checks"]["redis"].startswith("unavailable")
