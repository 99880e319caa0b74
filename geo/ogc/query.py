"""SQL for the OGC API: PostgreSQL renders each feature as GeoJSON text, Python only splices.

A page is one statement: each feature is rendered to JSON text and joined by string_agg, so
Python receives a single text value and never parses or re-serialises a feature (for 1000
cameras that is most of the response time). numberMatched needs a second count(*) with the same
WHERE, skipped when the page itself proves the total (a short page).

Identifiers come only from geo.ogc.registry and are quoted; request values are bound (%s).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.backends.utils import CursorWrapper

from accounts.jurisdiction import Jurisdiction
from geo.ogc.params import ItemsQuery, parse_key
from geo.ogc.registry import JURISDICTION, Collection, Filter

ALIAS = "t"
SRID = 4490
# 7 decimals of a degree is about 1 cm: finer than any position we hold. ST_AsGeoJSON's options
# must be 0: its default adds a "crs" member for any SRID but 4326, which RFC 7946 dropped.
GEOJSON_DECIMALS = 7


def ident(name: str) -> str:
    """A quoted SQL identifier (names come from the registry, quoting keeps them literal)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal for a property name from the registry."""
    return "'" + text.replace("'", "''") + "'"


def filter_clauses(column_sql: Callable[[str], str],
                   filters: Iterable[tuple[Filter, Sequence[str]]]) -> tuple[list[str], list]:
    """The one place a checked registry filter becomes SQL (the OGC API and the tiles share it):
    `column = %s` for one value, `column = ANY(%s)` for several; values are always bound."""
    clauses: list[str] = []
    params: list = []
    for flt, values in filters:
        if len(values) == 1:
            clauses.append(f"{column_sql(flt.column)} = %s")
            params.append(values[0])
        else:
            clauses.append(f"{column_sql(flt.column)} = ANY(%s)")
            params.append(list(values))
    return clauses, params


def col(name: str) -> str:
    return f"{ALIAS}.{ident(name)}"


def json_value(sql_expr: str) -> str:
    """SQL text of a value as JSON. to_json escapes strings, keeps numbers, booleans and arrays
    typed and writes timestamps as ISO 8601; SQL NULL becomes JSON null."""
    return f"coalesce(to_json({sql_expr})::text, 'null')"


def feature_sql(collection: Collection, flip_axes: bool) -> str:
    """The expression that renders one row as GeoJSON Feature text.

    Concatenated to_json pieces, not json_build_object: the same JSON, but json_build_object looks
    up each argument's output function on every row and costs about a third more for 1000
    features; and the geometry text from ST_AsGeoJSON is spliced in without a ::json parse."""
    geom = col(collection.geometry_column)
    if flip_axes:
        geom = f"ST_FlipCoordinates({geom})"
    pieces = [literal('{"type":"Feature","id":'), json_value(col(collection.id_column)),
              literal(',"geometry":'), f"coalesce(ST_AsGeoJSON({geom}, {GEOJSON_DECIMALS}, 0), 'null')",
              literal(',"properties":{')]
    for n, (name, column) in enumerate(collection.properties):
        value = json_value(f"to_json({col(column)})::text" if column in collection.json_text else col(column))
        pieces += [literal(("," if n else "") + json.dumps(name) + ":"), value]
    pieces.append(literal("}}"))
    return "(" + " || ".join(pieces) + ")"


def scope_sql(collection: Collection, jurisdiction: Jurisdiction) -> tuple[str, list]:
    if collection.scope == JURISDICTION:
        return jurisdiction.sql(ALIAS)
    return "TRUE", []


def where_sql(collection: Collection, items: ItemsQuery, jurisdiction: Jurisdiction) -> tuple[str, list]:
    clauses: list[str] = []
    params: list = []
    scope, scope_params = scope_sql(collection, jurisdiction)
    if scope != "TRUE":
        clauses.append(scope)
        params.extend(scope_params)
    if items.bbox is not None:
        # && against an envelope in the storage SRID uses the GiST index on geom; a null geom
        # (a unit that never reported) never matches, which is what a map extent should show.
        clauses.append(f"{col(collection.geometry_column)} && ST_MakeEnvelope(%s, %s, %s, %s, {SRID})")
        params.extend(items.bbox)
    filter_sql, filter_params = filter_clauses(col, items.filters)
    clauses += filter_sql
    params += filter_params
    return (" AND ".join(clauses) or "TRUE"), params


@dataclass
class Page:
    features: str  # the features joined by commas, ready to go between [ and ]
    number_returned: int
    number_matched: int | None  # None on a cursor page: counting would cost a full scan per page
    last_key: int | str | None  # the id of the page's last feature: the next page's cursor


def rows_sql(collection: Collection, items: ItemsQuery, jurisdiction: Jurisdiction) -> tuple[str, list]:
    """The page's rows in id order, (key, feature text) each: keyset after a cursor, else OFFSET.
    `key > %s ORDER BY key LIMIT n` walks the primary key index from the cursor on, so a deep page
    costs what the first does; OFFSET would read and drop every row before it."""
    where, params = where_sql(collection, items, jurisdiction)
    key = col(collection.id_column)
    if items.after is not None:
        where = f"({where}) AND {key} > %s"
        params = [*params, items.after]
    sql = (
        f"SELECT {key} AS key, {feature_sql(collection, items.flip_axes)} AS feature "  # noqa: S608
        f"FROM {ident(collection.table)} {ALIAS} WHERE {where} ORDER BY {key} LIMIT %s OFFSET %s"
    )
    return sql, [*params, items.limit, items.offset]


def page_sql(collection: Collection, items: ItemsQuery, jurisdiction: Jurisdiction) -> tuple[str, list]:
    """The whole page as one row: (features returned, their GeoJSON joined by commas, last id)."""
    rows, params = rows_sql(collection, items, jurisdiction)
    sql = (f"SELECT count(*), coalesce(string_agg(page.feature, ',' ORDER BY page.key), ''), "  # noqa: S608
           f"max(page.key) FROM ({rows}) page")
    return sql, params


def count_sql(collection: Collection, items: ItemsQuery, jurisdiction: Jurisdiction) -> tuple[str, list]:
    where, params = where_sql(collection, items, jurisdiction)
    return f"SELECT count(*) FROM {ident(collection.table)} {ALIAS} WHERE {where}", params  # noqa: S608


def number_matched(cursor: CursorWrapper, collection: Collection, items: ItemsQuery, jurisdiction: Jurisdiction,
                   returned: int) -> int | None:
    """numberMatched of a page that returned this many features, counted only when needed."""
    if items.after is not None:
        return None  # the rows before the cursor are unknown; the first page gave the total
    if returned < items.limit and (returned > 0 or items.offset == 0):
        # A short, non-empty page is the last one: the total is known without counting.
        return items.offset + returned
    cursor.execute(*count_sql(collection, items, jurisdiction))
    return int(cursor.fetchone()[0])


def fetch_page(collection: Collection, items: ItemsQuery, jurisdiction: Jurisdiction) -> Page:
    with connection.cursor() as cursor:
        cursor.execute(*page_sql(collection, items, jurisdiction))
        returned, features, last_key = cursor.fetchone()
        matched = number_matched(cursor, collection, items, jurisdiction, returned)
    return Page(features=features, number_returned=returned, number_matched=matched, last_key=last_key)


def fetch_feature(collection: Collection, feature_id: str, jurisdiction: Jurisdiction, flip_axes: bool) -> str | None:
    """One feature as GeoJSON text, or None if it does not exist or lies outside the jurisdiction."""
    key = parse_key(collection, feature_id)
    if key is None:
        return None  # not an id this collection can hold (a NUL, a letter in a code): absent
    scope, params = scope_sql(collection, jurisdiction)
    sql = (
        f"SELECT {feature_sql(collection, flip_axes)} FROM {ident(collection.table)} {ALIAS} "  # noqa: S608
        f"WHERE {col(collection.id_column)} = %s AND {scope}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [key, *params])
        row = cursor.fetchone()
    return row[0] if row else None
