"""Tests run against a real PostGIS: the test database is migrated by Django and then filled with
the full deterministic fixtures (the same load as `make setup`), once per session. With
`pytest --reuse-db` a second run finds the fixtures already loaded and skips the load."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connections


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        call_command("load_fixtures", verbosity=0)
        call_command("create_demo_accounts", verbosity=0)
    yield
    # psycopg's pool keeps connections open (some taken by server threads of the tests); close it
    # so that the test database can be dropped when the session ends.
    for connection in connections.all():
        if hasattr(connection, "close_pool"):
            connection.close_pool()
