"""A task's row read under lock and written back, by statements written out and prepared
(config.prepared), for the actions' hot path.

Why not the ORM here: every action reads its task under lock and writes it back, and building
those two statements cost the ORM more than PostgreSQL took to run them (one dispatcher, per
action: the locked read 1.5 ms of Python against 0.18 ms written out, and planning 0.6 ms in the
database each time, as Django's statements are never prepared). The rows are still model
instances (`Model.from_db`), so the actions' code is unchanged.

The scope is `Actor.task_scope_sql`, the SQL twin of `Actor.tasks()`;
tests/test_dispatch_scope.py holds the two to the same tasks for every role."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.geos import Point
from django.db import DEFAULT_DB_ALIAS, connections

from command.actor import Actor
from command.models import Category, Task
from config import prepared

# Every column but the geometries, which come as coordinates (the Web Mercator copy is derived).
_TASK_FIELDS = [f for f in Task._meta.concrete_fields if not isinstance(f, GeometryField)]
_CATEGORY_FIELDS = list(Category._meta.concrete_fields)
_CATEGORY = Task._meta.get_field("category")

# Column names from the models; the scope from Actor.task_scope_sql (bound values).
_TASK_COLUMNS = ", ".join(f't."{f.column}"' for f in _TASK_FIELDS)
SELECT_SQL = (
    f"SELECT {_TASK_COLUMNS}, ST_X(t.geom), ST_Y(t.geom), "  # noqa: S608
    + ", ".join(f'c."{f.column}"' for f in _CATEGORY_FIELDS)
    + " FROM command_task t JOIN command_category c ON c.code = t.category_id"
)
LOCKED_SQL = SELECT_SQL + " WHERE t.id = %s AND {scope} FOR UPDATE OF t"
MANY_SQL = SELECT_SQL + " WHERE t.id = ANY(%s) ORDER BY t.id"


def _task(row: tuple[Any, ...]) -> Task:
    n = len(_TASK_FIELDS)
    task = Task.from_db(DEFAULT_DB_ALIAS, [f.attname for f in _TASK_FIELDS], list(row[:n]))
    task.geom = Point(row[n], row[n + 1], srid=settings.ONEMAP_SRID)
    category = Category.from_db(DEFAULT_DB_ALIAS, [f.attname for f in _CATEGORY_FIELDS], list(row[n + 2:]))
    _CATEGORY.set_cached_value(task, category)
    return task


def lock(actor: Actor, task_id: int) -> Task | None:
    """The task, locked until the end of the transaction, if the actor may see it; else None."""
    scope, params = actor.task_scope_sql("t")
    rows = prepared.fetch(LOCKED_SQL.format(scope=scope), [task_id, *params])
    return _task(rows[0]) if rows else None


def read(ids: list[int]) -> list[Task]:
    """Tasks by id, in id order, unscoped: for ids a scoped statement has just found."""
    return [_task(row) for row in prepared.fetch(MANY_SQL, [ids])] if ids else []


_WRITABLE = {f.name: f for f in _TASK_FIELDS}


def write(task: Task, fields: list[str]) -> None:
    """UPDATE the given (non-geometry) fields of the task's row with the instance's values."""
    if not fields:
        return
    columns = [_WRITABLE[name] for name in fields]
    db = connections[DEFAULT_DB_ALIAS]
    sql = ("UPDATE command_task SET " + ", ".join(f'"{f.column}" = %s' for f in columns)  # noqa: S608 (model columns)
           + " WHERE id = %s")
    prepared.fetch(sql, [f.get_db_prep_save(getattr(task, f.attname), connection=db) for f in columns] + [task.pk])
