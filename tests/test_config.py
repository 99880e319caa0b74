"""Settings come from the environment: DATABASE_URL parsing and the local-cluster default."""

from __future__ import annotations

import pytest

from config.env import database_from_url, local_database_url


def test_tcp_url():
    db = database_from_url("postgresql://gis:s%40cret@db.example:6543/city")
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == ("city", "gis", "s@cret", "db.example", "6543")
    assert db["ENGINE"] == "django.contrib.gis.db.backends.postgis"


def test_socket_url_and_options():
    db = database_from_url("postgresql://onemap@/onemap?host=/run/pg&port=5433&sslmode=disable")
    assert (db["HOST"], db["PORT"], db["OPTIONS"]["sslmode"]) == ("/run/pg", "5433", "disable")


def test_sessions_run_without_parallel_query_unless_the_url_says_otherwise():
    base = "-c max_parallel_workers_per_gather=0 -c plan_cache_mode=force_generic_plan"
    assert database_from_url("postgresql://u@h/db")["OPTIONS"]["options"] == base
    db = database_from_url("postgresql://u@h/db?options=-c%20max_parallel_workers_per_gather%3D2")
    assert db["OPTIONS"]["options"] == base + " -c max_parallel_workers_per_gather=2"


@pytest.mark.django_db
def test_the_connections_tiles_use_have_parallel_query_off() -> None:
    from django.db import connection

    from tiles.loopdb import connect_like_django

    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        assert cursor.fetchone()[0] == "0"
        cursor.execute("SHOW plan_cache_mode")  # prepared statements (config.prepared) planned once
        assert cursor.fetchone()[0] == "force_generic_plan"
    with connect_like_django() as loop_connection:
        assert loop_connection.execute("SHOW max_parallel_workers_per_gather").fetchone() == ("0",)
        assert loop_connection.execute("SHOW plan_cache_mode").fetchone() == ("force_generic_plan",)


def test_connections_are_pooled_unless_turned_off(monkeypatch):
    db = database_from_url("postgresql://u@h/db")
    assert db["OPTIONS"]["pool"]["max_size"] >= 2 and db["CONN_MAX_AGE"] == 0
    monkeypatch.setenv("ONEMAP_DB_POOL", "0")
    db = database_from_url("postgresql://u@h/db")
    assert "pool" not in db["OPTIONS"] and db["CONN_MAX_AGE"] == 60


def test_local_default_points_under_var():
    db = database_from_url(local_database_url())
    assert str(db["HOST"]).endswith(".var/run") and db["NAME"] == "onemap"


def test_other_schemes_are_refused():
    with pytest.raises(ValueError, match="postgresql://"):
        database_from_url("mysql://u@h/db")
