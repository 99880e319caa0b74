"""Reading the test database with SQL written out, for tests that check what was stored."""

from __future__ import annotations

from typing import Any

from django.db import connection


def rows(query: str, params: list | None = None) -> list[tuple]:  # type: ignore[type-arg]
    with connection.cursor() as cur:
        cur.execute(query, params or [])
        return cur.fetchall()


def scalar(query: str, params: list | None = None) -> Any:  # type: ignore[type-arg]
    return rows(query, params)[0][0]
