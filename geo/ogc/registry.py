"""The collections the OGC API serves, declared in one place.

Every SQL identifier the API uses comes from here (never from a request): the table, the geometry
and id columns, the whitelisted property columns, and the columns a query parameter may filter.
Values from a request are always bound parameters.

Scope: "public" collections (boundaries, cameras) are readable by any authenticated user;
"jurisdiction" collections (hotspot ledger, officers, vehicles) are narrowed to the user's
district or street by accounts.jurisdiction.Jurisdiction.

Officers and vehicles are served at their latest position (`geom` on the row). A unit that has
never reported has a null geometry: it is listed (so a dispatcher sees the whole roster) but a
bbox query leaves it out, since it is nowhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.db.models import TextChoices

from geo.models import Camera, Community, District, GridCell, HotspotCategory, HotspotPoint, Officer, Street, Vehicle

PUBLIC = "public"
JURISDICTION = "jurisdiction"

DISTRICT_CODE = re.compile(r"^1101\d\d$")
STREET_CODE = re.compile(r"^\d{9}$")
COMMUNITY_CODE = re.compile(r"^\d{12}$")
UNIT_CODE = re.compile(r"^[\w-]{1,8}$")
GRID_CELL_CODE = re.compile(r"^\d{15}$")
# The integer ids of the other collections: bigint, written in plain ASCII digits.
INTEGER_ID = re.compile(r"^[0-9]{1,19}$")


@dataclass(frozen=True)
class Filter:
    """A query parameter that narrows the items: `param=value` or `param=v1,v2` (any of)."""

    param: str
    column: str
    choices: tuple[str, ...] = ()  # an enum: only these values
    pattern: re.Pattern[str] | None = None  # a code: values must match

    def describe(self) -> str:
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        return f"matching {self.pattern.pattern}" if self.pattern else "any value"


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    table: str
    properties: tuple[tuple[str, str], ...]  # (output name, column)
    id_column: str = "id"
    id_is_integer: bool = True
    # What an id of this collection looks like: a path id or a `cursor` that does not match is
    # refused before any SQL (a NUL byte or a 401-digit number never reaches PostgreSQL).
    id_pattern: re.Pattern[str] = INTEGER_ID
    geometry_column: str = "geom"
    geometry_type: str = "Point"
    scope: str = PUBLIC
    filters: tuple[Filter, ...] = field(default_factory=tuple)
    # Array columns published as JSON text (`"[\"国庆\"]"`), not as a JSON array: GDAL reads an
    # array as a StringList, which GeoPackage and Shapefile cannot hold (ogr2ogr warns and drops or
    # mangles it). JSON text keeps every element exactly, commas included, in any target format.
    json_text: tuple[str, ...] = ()

    def filter_for(self, param: str) -> Filter | None:
        return next((f for f in self.filters if f.param == param), None)


def choices(text_choices: type[TextChoices]) -> tuple[str, ...]:
    return tuple(text_choices.values)


DISTRICT_FILTER = Filter("district", "district_id", pattern=DISTRICT_CODE)
STREET_FILTER = Filter("street", "street_id", pattern=STREET_CODE)
UNIT_FILTER = Filter("unit", "unit_id", pattern=UNIT_CODE)
# The position and motion of a field unit, shared by officers and vehicles. Published names keep to
# 10 characters, a Shapefile's limit: longer ones are truncated by ogr2ogr (with a warning).
POSITION_PROPERTIES = (
    ("located_at", "position_at"),
    ("speed", "speed"),
    ("heading", "heading"),
    ("accuracy", "accuracy"),
)

COLLECTIONS: tuple[Collection, ...] = (
    Collection(
        id="districts", title="Districts 区", geometry_type="MultiPolygon",
        description="The 16 districts of Beijing (GB/T 2260 codes), CGCS2000.",
        table=District._meta.db_table, id_column="code", id_is_integer=False, id_pattern=DISTRICT_CODE,
        properties=(("code", "code"), ("name", "name"), ("name_en", "name_en")),
    ),
    Collection(
        id="streets", title="Streets and towns 街道乡镇", geometry_type="MultiPolygon",
        description="Streets, towns and townships (2023 division codes). Polygons are synthetic.",
        table=Street._meta.db_table, id_column="code", id_is_integer=False, id_pattern=STREET_CODE,
        properties=(("code", "code"), ("name", "name"), ("kind", "kind"), ("district", "district_id"),
                    ("synthetic", "synthetic")),
        filters=(DISTRICT_FILTER, Filter("kind", "kind", choices=choices(Street.Kind))),
    ),
    Collection(
        id="communities", title="Communities 社区", geometry_type="MultiPolygon",
        description="Communities and villages (12-digit codes). Polygons are synthetic.",
        table=Community._meta.db_table, id_column="code", id_is_integer=False, id_pattern=COMMUNITY_CODE,
        properties=(("code", "code"), ("name", "name"), ("street", "street_id"), ("district", "district_id"),
                    ("synthetic", "synthetic")),
        filters=(DISTRICT_FILTER, STREET_FILTER),
    ),
    Collection(
        id="gridcells", title="Unit grid cells 单元网格", geometry_type="MultiPolygon",
        description="Unit grid cells, 15-digit Beijing local codes.",
        table=GridCell._meta.db_table, id_column="code", id_is_integer=False, id_pattern=GRID_CELL_CODE,
        properties=(("code", "code"), ("community", "community_id"), ("street", "street_id"),
                    ("district", "district_id"), ("synthetic", "synthetic")),
        filters=(DISTRICT_FILTER, STREET_FILTER, Filter("community", "community_id", pattern=COMMUNITY_CODE)),
    ),
    Collection(
        id="hotspots", title="Hotspot ledger 挂账点位", scope=JURISDICTION,
        description="Points on the ledger (挂账) until fixed (销账), by category.",
        table=HotspotPoint._meta.db_table,
        properties=(("name", "name"), ("category", "category"), ("status", "status"), ("tags", "tags"),
                    ("opened_at", "opened_at"), ("closed_at", "closed_at"), ("district", "district_id"),
                    ("street", "street_id"), ("grid_cell", "grid_cell_id")),
        filters=(Filter("category", "category", choices=choices(HotspotCategory)),
                 Filter("status", "status", choices=choices(HotspotPoint.Status)),
                 DISTRICT_FILTER, STREET_FILTER),
        json_text=("tags",),
    ),
    Collection(
        id="cameras", title="Cameras 探头",
        description="Self-built, police-shared and construction-site cameras.",
        table=Camera._meta.db_table,
        properties=(("code", "code"), ("name", "name"), ("source", "source"), ("status", "status"),
                    ("heading", "heading"), ("fov", "fov"), ("owner_unit", "owner_unit"),
                    ("stream_url", "stream_url"), ("district", "district_id"), ("street", "street_id"),
                    ("grid_cell", "grid_cell_id")),
        filters=(Filter("source", "source", choices=choices(Camera.Source)),
                 Filter("status", "status", choices=choices(Camera.Status)),
                 DISTRICT_FILTER, STREET_FILTER),
    ),
    Collection(
        id="officers", title="Officers 执法队员", scope=JURISDICTION,
        description="Field officers at their latest position; null geometry if never reported.",
        table=Officer._meta.db_table,
        # device_id stays out: it is what the position ingest trusts.
        properties=(("call_sign", "call_sign"), ("name", "name"), ("badge", "badge"), ("unit", "unit_id"),
                    ("district", "district_id"), ("street", "street_id"), *POSITION_PROPERTIES),
        filters=(DISTRICT_FILTER, STREET_FILTER, UNIT_FILTER),
    ),
    Collection(
        id="vehicles", title="Vehicles 车辆", scope=JURISDICTION,
        description="Vehicles at their latest position; null geometry if never reported.",
        table=Vehicle._meta.db_table,
        properties=(("call_sign", "call_sign"), ("plate", "plate"), ("kind", "kind"), ("unit", "unit_id"),
                    ("district", "district_id"), ("street", "street_id"), *POSITION_PROPERTIES),
        filters=(Filter("kind", "kind", choices=choices(Vehicle.Kind)), DISTRICT_FILTER, STREET_FILTER,
                 UNIT_FILTER),
    ),
)

# Dispatch tasks (command/): declared here by table name, so geo does not import the dispatch
# domain. The states and the category codes are command.workflow's and command_category's.
TASK_STATES = ("reported", "filed", "dispatched", "accepted", "on_site", "handled", "verified", "closed",
               "cancelled", "merged")
COLLECTIONS += (
    Collection(
        id="tasks", title="Dispatch tasks 任务", scope=JURISDICTION,
        description="Hotspot tasks (案件) from intake to verified closure, at their place.",
        table="command_task",
        properties=(("number", "number"), ("state", "state"), ("category", "category_id"), ("source", "source"),
                    ("deadline", "deadline"), ("overdue", "overdue"), ("escalation", "escalation"),
                    ("created_at", "created_at"), ("district", "district_id"), ("street", "street_id"),
                    ("grid_cell", "grid_cell_id"), ("hotspot", "hotspot_id")),
        filters=(Filter("state", "state", choices=TASK_STATES),
                 Filter("category", "category_id", pattern=re.compile(r"^[A-Z]\d{4,6}$")),
                 DISTRICT_FILTER, STREET_FILTER),
    ),
)

BY_ID: dict[str, Collection] = {c.id: c for c in COLLECTIONS}


def get(collection_id: str) -> Collection | None:
    return BY_ID.get(collection_id)
