"""Query parameters of the OGC API, checked before any SQL runs. A bad value is a 400 problem.

Axis order (OGC API Features Part 2): CRS84 is lon/lat; EPSG:4490 is lat/lon as EPSG defines it.
A bbox given with bbox-crs=EPSG:4490 is therefore minlat,minlon,maxlat,maxlon, and a response
in crs=EPSG:4490 has its coordinates swapped. The stored geometry is CGCS2000 lon/lat, which
equals CRS84 within centimetres, so no datum transformation is ever done."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.conf import settings
from django.http import QueryDict

from config.problems import Problem
from geo.ogc.registry import Collection, Filter

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
SUPPORTED_CRS = (CRS84, EPSG_4490)
STORAGE_CRS = EPSG_4490
# Spellings clients use for the same two CRSs: URI, CURIE, safe CURIE, short code.
CRS_ALIASES = {
    CRS84: CRS84, "https://www.opengis.net/def/crs/OGC/1.3/CRS84": CRS84, "CRS84": CRS84, "OGC:CRS84": CRS84,
    "[OGC:CRS84]": CRS84,
    EPSG_4490: EPSG_4490, "https://www.opengis.net/def/crs/EPSG/0/4490": EPSG_4490, "EPSG:4490": EPSG_4490,
    "[EPSG:4490]": EPSG_4490,
}
LAT_LON_CRS = {EPSG_4490}

DEFAULT_LIMIT = 10
# PostgreSQL's OFFSET is a bigint; far beyond any real page anyway.
MAX_OFFSET = 2**31 - 1
MAX_BIGINT = 2**63 - 1
MAX_INT_CHARS = 20
SHOWN_CHARS = 40
FORMATS = {"json", "geojson"}
COMMON_PARAMS = {"f"}
# `cursor`: the id of the last feature of the previous page; the page continues after it
# (keyset paging: as cheap at the 140,000th feature as at the first). `offset` stays for clients
# that build their own page URLs; the `next` links this API writes always use `cursor`.
ITEMS_PARAMS = {"bbox", "bbox-crs", "limit", "offset", "cursor", "crs"} | COMMON_PARAMS
FEATURE_PARAMS = {"crs"} | COMMON_PARAMS


def shown(raw: str) -> str:
    """A request value as a problem detail quotes it: repr (so a NUL shows as \\x00), cut short."""
    return repr(raw) if len(raw) <= SHOWN_CHARS else repr(raw[:SHOWN_CHARS]) + "..."


def bad_request(detail: str, title: str = "Invalid query parameter") -> Problem:
    return Problem(400, detail, title=title)


@dataclass
class ItemsQuery:
    """A checked items request. bbox is always lon/lat (minx, miny, maxx, maxy)."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    after: int | str | None = None  # the `cursor`: the page holds the ids after this one
    bbox: tuple[float, float, float, float] | None = None
    crs: str = CRS84
    filters: list[tuple[Filter, list[str]]] = field(default_factory=list)

    @property
    def flip_axes(self) -> bool:
        return self.crs in LAT_LON_CRS


def parse_crs(raw: str | None, name: str = "crs") -> str:
    if raw is None or raw == "":
        return CRS84
    crs = CRS_ALIASES.get(raw.strip())
    if crs is None:
        raise bad_request(f"{name}={raw!r} is not supported; use one of {', '.join(SUPPORTED_CRS)}.",
                          title="Unsupported CRS")
    return crs


def check_known_params(query: QueryDict, allowed: set[str]) -> None:
    unknown = sorted(set(query.keys()) - allowed)
    if unknown:
        raise bad_request(f"Unknown query parameter(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}.")
    fmt = query.get("f")
    if fmt is not None and fmt not in FORMATS:
        raise bad_request(f"f={fmt!r}: only JSON is served (f=json).", title="Unsupported format")


def parse_int(query: QueryDict, name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        # Bounded before int(): a page size or offset never needs more than 19 digits.
        value = int(raw.strip()) if len(raw) <= MAX_INT_CHARS else None
    except ValueError:
        value = None
    if value is None:
        raise bad_request(f"{name}={shown(raw)} is not an integer of at most {MAX_INT_CHARS} characters.")
    if not low <= value <= high:
        raise bad_request(f"{name}={value} is out of range: {low} to {high}.")
    return value


def parse_key(collection: Collection, raw: str) -> int | str | None:
    """A feature id as the collection declares it (registry id_pattern), or None if it cannot be
    one. Checked here so that a NUL byte, a 401-digit number or a stray newline never reaches SQL."""
    if not (raw.isascii() and collection.id_pattern.fullmatch(raw)):
        return None
    if not collection.id_is_integer:
        return raw
    value = int(raw)
    return value if value <= MAX_BIGINT else None


def parse_cursor(collection: Collection, query: QueryDict) -> int | str | None:
    raw = query.get("cursor")
    if raw is None:
        return None
    key = parse_key(collection, raw)
    if key is None:
        raise bad_request(f"cursor={shown(raw)} is not an id of {collection.id!r}: use the `next` link of the "
                          "previous page.")
    return key


def parse_bbox(raw: str, crs: str) -> tuple[float, float, float, float]:
    parts = raw.split(",")
    if len(parts) not in (4, 6):
        raise bad_request(f"bbox={raw!r}: give 4 numbers (or 6 with heights).")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise bad_request(f"bbox={raw!r}: every value must be a number.") from None
    if not all(math.isfinite(n) for n in numbers):
        raise bad_request(f"bbox={raw!r}: NaN and infinity are not coordinates.")
    if len(numbers) == 6:  # minx,miny,minz,maxx,maxy,maxz: heights play no part here
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if crs in LAT_LON_CRS:
        lat1, lon1, lat2, lon2 = numbers
    else:
        lon1, lat1, lon2, lat2 = numbers
    if not (-90 <= lat1 <= 90 and -90 <= lat2 <= 90):
        raise bad_request(f"bbox={raw!r}: latitude outside -90..90 (axis order of {crs}).")
    if not (-180 <= lon1 <= 180 and -180 <= lon2 <= 180):
        raise bad_request(f"bbox={raw!r}: longitude outside -180..180 (axis order of {crs}).")
    # A box across the antimeridian is legal OGC but never a Beijing query: refuse it as a mistake.
    if lon1 > lon2 or lat1 > lat2:
        raise bad_request(f"bbox={raw!r}: the lower corner must come first (min <= max on each axis).")
    return lon1, lat1, lon2, lat2


def parse_filter(flt: Filter, raw: str) -> list[str]:
    values = [v.strip() for v in raw.split(",")]
    for value in values:
        if flt.choices and value not in flt.choices:
            raise bad_request(f"{flt.param}={value!r} is not allowed: {flt.describe()}.")
        if flt.pattern is not None and not flt.pattern.fullmatch(value):
            raise bad_request(f"{flt.param}={value!r} is not a valid code: {flt.describe()}.")
    return values


def parse_items_query(collection: Collection, query: QueryDict) -> ItemsQuery:
    check_known_params(query, ITEMS_PARAMS | {f.param for f in collection.filters})
    items = ItemsQuery(
        limit=parse_int(query, "limit", DEFAULT_LIMIT, 1, settings.OGC_MAX_LIMIT),
        offset=parse_int(query, "offset", 0, 0, MAX_OFFSET),
        crs=parse_crs(query.get("crs")),
        after=parse_cursor(collection, query),
    )
    if items.after is not None and items.offset:
        raise bad_request("Give either cursor or offset, not both: a cursor page starts after its id.")
    raw_bbox = query.get("bbox")
    if raw_bbox is not None:
        items.bbox = parse_bbox(raw_bbox, parse_crs(query.get("bbox-crs"), "bbox-crs"))
    elif query.get("bbox-crs"):
        parse_crs(query.get("bbox-crs"), "bbox-crs")  # still refuse an unknown CRS
    for flt in collection.filters:
        raw = query.get(flt.param)
        if raw is not None:
            items.filters.append((flt, parse_filter(flt, raw)))
    return items


def parse_feature_query(query: QueryDict) -> str:
    """The CRS a single feature is asked in."""
    check_known_params(query, FEATURE_PARAMS)
    return parse_crs(query.get("crs"))
