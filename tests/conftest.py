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
    _end_other_sessions(connections["default"].settings_dict)


def _end_other_sessions(settings: dict) -> None:  # type: ignore[type-arg]
    """Connections that threads of this process (channels' database_sync_to_async workers) still
    hold would keep Django from dropping the test database ("being accessed by other users")."""
    import psycopg

    params = {"host": settings["HOST"], "port": settings["PORT"] or None, "user": settings["USER"],
              "password": settings["PASSWORD"] or None, "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE datname = %s AND pid <> pg_backend_pid()", [settings["NAME"]])


@pytest.fixture(autouse=True)
def _process_caches_afresh():  # type: ignore[no-untyped-def]
    """Each test starts with nothing remembered by the process (API tokens, categories and rules):
    its query budgets do not depend on which tests ran before it, and nothing a rolled-back test
    wrote (a dispatch rule, say) is remembered by the next."""
    from accounts.middleware import forget_tokens
    from command import catalog

    forget_tokens()
    catalog.forget()
    yield
    catalog.forget()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that reaches the database through django_db_blocker (committed rows on a thread, a
    real server process) gets the test database set up first, as a django_db test would. Without
    it, a session whose first such test ran before any django_db test wrote into the development
    database (the connection still named it): test profiles left there broke `make demo`."""
    for item in items:
        names = getattr(item, "fixturenames", None)
        if names is not None and "django_db_blocker" in names and "django_db_setup" not in names:
            names.insert(0, "django_db_setup")
