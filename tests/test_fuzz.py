"""Property-based fuzzing (Hypothesis) of every HTTP endpoint and every WebSocket message type
with hostile JSON and query strings: never a 5xx, an API's error is always an RFC 9457 problem,
a socket answers every frame (never with a server_error) and stays open, and whatever the server
sends is strict JSON.

Hostile: deep nesting (up to 100,000 levels), numbers beyond a double or beyond Python's digit
limit, NaN and Infinity, \\u0000 and lone surrogates, bytes that are not UTF-8, truncated
documents, wrong types in every field, and query strings with bad percent-escapes, repeated and
unknown parameters. Documents keep the endpoint's own shape often enough to get past the first
check (a fix batch with hostile values in its fields), so the handlers' own validation runs too.

Bounded and deterministic: FUZZ_EXAMPLES examples per endpoint and message type (derandomize,
no example database); ONEMAP_FUZZ_EXAMPLES raises it for a deeper run by hand.

Every route Django resolves must be fuzzed here (test_every_route_is_fuzzed): a new endpoint
gets an entry in ENDPOINTS, or a reason in NOT_FUZZED."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.asgi import application
from config.problems import API_PREFIXES, PROBLEM_CONTENT_TYPE
from geo.ogc import registry as ogc_registry
from realtime.consumers import FieldConsumer, MapConsumer
from tests.realtime_support import DISTRICT_A, STREET_A1, WAIT, in_db_thread, run, world  # noqa: F401 (a fixture)
from tiles import registry as tile_registry

pytestmark = pytest.mark.django_db

FUZZ_EXAMPLES = int(os.environ.get("ONEMAP_FUZZ_EXAMPLES", "50"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.large_base_example])

# --- hostile values ---------------------------------------------------------------------------

# JSON text that no Python value serialises to; spliced into documents where a value goes.
RAW_LITERALS = ("NaN", "Infinity", "-Infinity", "1" * 401, "-" + "9" * 401, "1e400", "-1e999", "1" * 5000,
                "[" * 64 + "]" * 64, '{"a":' * 40 + "1" + "}" * 40, '"\\u0000"', '"\\ud800"', '"a\\udfffb"',
                '"\\ud83d\\ude93"', "0.0000000000000000000000000000000000000000000000000000000000000000001")
RAW_MARK = re.compile(r'"\\u0001RAW(\d+)\\u0001"')
HOSTILE_STRINGS = ("", " ", "\x00", "\ud800", "\udfff\ud800", "NaN", "Infinity", "-1", "1e400", "1" * 401, "0x10",
                   "١٢٣", " 116.4 ", "2024-13-45T99:99:99", "9999-12-31T23:59:59+14:00", "0001-01-01", "-0",
                   "../../etc/passwd", "' OR 1=1 --", "%00", "\n", "\t\r", "null", "true", "[]", "{}", "a" * 5000,
                   "地图", "\U0001f693", "OFF-000001", "110101", "110101001", "officers", "vehicles", "wgs84", "gcj02")


def raw(index: int) -> str:
    return f"\x01RAW{index}\x01"


def dumps(document: Any) -> str:
    """JSON text of a generated document: escapes for every non-ASCII character (a lone surrogate
    has no UTF-8), NaN as NaN, and the RAW_LITERALS in place of their markers."""
    text = json.dumps(document, ensure_ascii=True, allow_nan=True)
    return RAW_MARK.sub(lambda m: RAW_LITERALS[int(m.group(1))], text)


any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=30)  # surrogates and NUL too
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**60, max_value=10**500),
    st.integers(max_value=-(10**60), min_value=-(10**500)), st.floats(allow_nan=True, allow_infinity=True),
    any_text, st.sampled_from(HOSTILE_STRINGS), st.integers(0, len(RAW_LITERALS) - 1).map(raw))
keys = st.one_of(any_text, st.sampled_from(("type", "fixes", "fix", "payload", "device_id", "lon", "lat", "time")))
values = st.recursive(scalars, lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
                      max_leaves=12)


def json_texts(shaped: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """Documents of the endpoint's shape (often), any value, or text that is not JSON at all."""
    return st.one_of(
        shaped.map(dumps), shaped.map(dumps), shaped.map(dumps), shaped.map(dumps), shaped.map(dumps), values.map(dumps),
        st.integers(1, 100_000).map(lambda n: "[" * n),  # unbalanced: 100,000 levels
        st.integers(33, 3000).map(lambda n: "[" * n + "]" * n),
        st.integers(33, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
        shaped.map(dumps).flatmap(lambda text: st.integers(0, len(text)).map(lambda cut: text[:cut])),  # truncated
        st.text(max_size=50),
    )


def body_bytes(shaped: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return st.one_of(json_texts(shaped).map(str.encode), json_texts(shaped).map(lambda t: t.encode("utf-16")),
                     st.binary(max_size=64))


# The wrong type where a value goes: containers (unhashable: `x in {...}` raises on them), scalars.
wrong_types = st.one_of(st.lists(scalars, max_size=3), st.dictionaries(keys, scalars, max_size=3), scalars)


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A plausible value or a hostile one: plausible values get documents past the first check."""
    return st.one_of(value, wrong_types, values)


def now_iso(offset_s: int) -> str:
    return (datetime.now(UTC) - timedelta(seconds=offset_s)).isoformat()


def fix_documents(devices: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    plausible_time = st.one_of(st.integers(0, 3600).map(now_iso),
                               st.integers(0, 3600).map(lambda s: int(datetime.now(UTC).timestamp()) - s))
    return st.fixed_dictionaries(
        {"device_id": maybe(st.sampled_from(devices)), "time": maybe(plausible_time),
         "lon": maybe(st.floats(115.5, 117.5)), "lat": maybe(st.floats(39.5, 41.0))},
        optional={"speed": values, "heading": values, "accuracy": values, "battery": values,
                  "crs": maybe(st.sampled_from(("wgs84", "gcj02", "bd09"))), "type": values})


# Query strings: each parameter's value plausible, hostile text (percent-encoded), or raw junk
# that is not valid percent-encoding at all.
QUERY_JUNK = ("%", "%zz", "%ff%fe", "%00", "%C0%AF", "&&", "=", "==", "a=%", "+", "%2B%2", ";", "a[]=1", "\\")


ENCODABLE_HOSTILE = [s for s in HOSTILE_STRINGS if not re.search("[\ud800-\udfff]", s)]  # quote() needs UTF-8
text_values = st.text(st.characters(codec="utf-8"), max_size=20)


def parameter(name: str, plausible: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    value = st.one_of(plausible, text_values, st.sampled_from(ENCODABLE_HOSTILE))
    return value.map(lambda v: f"{name}={quote(v)}")


def query_strings(params: dict[str, st.SearchStrategy[str]]) -> st.SearchStrategy[str]:
    pair = st.one_of(
        st.sampled_from(sorted(params)).flatmap(lambda name: parameter(name, params[name])),
        st.tuples(text_values, text_values).map(lambda kv: f"{quote(kv[0])}={quote(kv[1])}"),
        st.sampled_from(QUERY_JUNK))
    return st.lists(pair, max_size=6).map("&".join)


def numbers_as_text(low: int, high: int) -> st.SearchStrategy[str]:
    return st.one_of(st.integers(low, high).map(str), st.floats(low, high).map(repr))


# --- HTTP -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # percent-encoded, ASCII
    query: str = ""
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    name: str
    routes: tuple[str, ...]  # the resolver's patterns it covers (see routes())
    requests: Callable[[Any, dict[str, str]], st.SearchStrategy[Request]]  # (world, credentials)
    via_asgi: bool = False  # the server's fast paths (ingest, signed tiles), through config.asgi
    examples: int = FUZZ_EXAMPLES


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def segments(plausible: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A path segment: plausible, or hostile text percent-encoded (no NUL: the OGC item id with
    %00 is being fixed elsewhere in issue 14; add it here when that lands)."""
    hostile = st.one_of(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20),
                        st.sampled_from([s for s in HOSTILE_STRINGS if s and "\x00" not in s
                                         and not re.search("[\ud800-\udfff]", s)]))
    return st.one_of(plausible, hostile.map(lambda s: quote(s, safe="")))


def positions_requests(w: Any, creds: dict[str, str]) -> st.SearchStrategy[Request]:
    fixes = fix_documents(w.device_ids())
    batch = st.one_of(st.lists(maybe(fixes), max_size=4),
                      st.fixed_dictionaries({"fixes": maybe(st.lists(maybe(fixes), max_size=4))},
                                            optional={"crs": maybe(st.sampled_from(("wgs84", "gcj02", "bd09")))}))
    auth = st.sampled_from([bearer(creds["gateway"]), bearer(creds["device"]), bearer("dev_wrong"), {}])
    return st.builds(Request, st.sampled_from(["POST", "POST", "GET", "PUT"]), st.just("/api/positions"),
                     query_strings({"token": st.sampled_from([creds["gateway"], "dev_x"])}), body_bytes(batch),
                     st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", ""]), auth)


def osmand_requests(w: Any, creds: dict[str, str]) -> st.SearchStrategy[Request]:
    device = creds["device_id"]
    params = {"token": st.sampled_from([creds["device"], creds["device"], "dev_wrong"]), "id": st.just(device),
              "lat": numbers_as_text(39, 41), "lon": numbers_as_text(115, 118),
              "timestamp": st.integers(0, 3600).map(lambda s: str(int(datetime.now(UTC).timestamp()) - s)),
              "speed": numbers_as_text(-5, 200), "bearing": numbers_as_text(-360, 720), "accuracy": numbers_as_text(0, 99),
              "batt": numbers_as_text(-1, 101), "altitude": numbers_as_text(-100, 9000)}
    traccar9 = st.fixed_dictionaries({"device_id": maybe(st.just(device)), "location": maybe(st.fixed_dictionaries({
        "timestamp": maybe(st.integers(0, 3600).map(now_iso)),
        "coords": maybe(st.fixed_dictionaries({"latitude": maybe(st.floats(39.5, 41)), "longitude": maybe(st.floats(115.5, 117.5))},
                                              optional={"speed": values, "heading": values, "accuracy": values})),
        "battery": maybe(st.fixed_dictionaries({"level": maybe(st.floats(0, 1))}))}))})
    json_post = st.builds(Request, st.just("POST"), st.just("/ingest/osmand"),
                          query_strings({"token": params["token"], "id": params["id"]}), body_bytes(traccar9),
                          st.sampled_from(["application/json", ""]))
    query_get = st.builds(Request, st.sampled_from(["GET", "POST", "DELETE"]), st.just("/ingest/osmand"),
                          query_strings(params), st.just(b""), st.just(""))
    form_post = st.builds(Request, st.just("POST"), st.just("/ingest/osmand"), st.just(""),
                          query_strings(params).map(str.encode), st.just("application/x-www-form-urlencoded"))
    return st.one_of(query_get, json_post, form_post)


def pushes_requests(w: Any, creds: dict[str, str]) -> st.SearchStrategy[Request]:
    push = st.fixed_dictionaries({"device_id": maybe(st.sampled_from(w.device_ids())),
                                  "kind": maybe(st.sampled_from(["task", "map_push"])),
                                  "payload": maybe(st.dictionaries(keys, values, max_size=4))})
    return st.builds(Request, st.sampled_from(["POST", "POST", "GET"]), st.just("/api/pushes"),
                     query_strings({"device_id": st.just("x")}), body_bytes(push), st.just("application/json"),
                     st.sampled_from([bearer(creds["dispatcher"]), bearer(creds["officer"]), {}]))


def push_detail_requests(w: Any, creds: dict[str, str]) -> st.SearchStrategy[Request]:
    path = segments(st.uuids().map(str)).map(lambda s: f"/api/pushes/{s}")
    return st.builds(Request, st.sampled_from(["GET", "DELETE"]), path, query_strings({"f": st.just("json")}),
                     headers=st.just(bearer(creds["dispatcher"])))


OGC_PARAMS = {"f": st.sampled_from(["json", "geojson", "html", "xml"]), "limit": numbers_as_text(-5, 20),
              "offset": numbers_as_text(-5, 10**7), "bbox": st.lists(numbers_as_text(-200, 200), min_size=0, max_size=6).map(",".join),
              "bbox-crs": st.sampled_from(["http://www.opengis.net/def/crs/OGC/1.3/CRS84", "http://www.opengis.net/def/crs/EPSG/0/4490",
                                           "EPSG:4326", "x"]),
              "crs": st.sampled_from(["http://www.opengis.net/def/crs/EPSG/0/4490", "http://www.opengis.net/def/crs/EPSG/0/3857"]),
              "datetime": st.sampled_from(["2024-01-01T00:00:00Z", "../2024-01-01", "x"]),
              "status": st.sampled_from(["normal", "fault", ""]), "source": st.sampled_from(["self_built", "x"]),
              "district": st.sampled_from(["110101", DISTRICT_A, "1101"]), "street": st.sampled_from([STREET_A1, "1"])}


def ogc_requests(w: Any, creds: dict[str, str]) -> st.SearchStrategy[Request]:
    collection = segments(st.sampled_from([c.id for c in ogc_registry.COLLECTIONS]))
    feature = segments(st.one_of(st.integers(-5, 10**12).map(str), st.sampled_from(["110101", "110101001"])))
    path = st.one_of(st.just("/ogc/"), st.just("/ogc/conformance"), st.just("/ogc/collections"),
                     collection.map(lambda c: f"/ogc/collections/{c}"),
                     collection.map(lambda c: f"/ogc/collections/{c}/items"),
                     st.tuples(collection, feature).map(lambda cf: f"/ogc/collections/{cf[0]}/items/{cf[1]}"),
                     segments(st.just("x")).map(lambda s: f"/ogc/{s}/more"))
    return st.builds(Request, st.sampled_from(["GET", "GET", "HEAD", "POST"]), path, query_strings(OGC_PARAMS),
                     headers=st.sampled_from([bearer(creds["district"]), bearer(creds["city"]), {}]))


def layer_lists() -> st.SearchStrategy[str]:
    ids = [layer.id for layer in tile_registry.LAYERS]
    return segments(st.lists(st.sampled_from(ids), min_size=1, max_size=4).map(",".join))


TILE_PARAMS = {"v": st.sampled_from(["0", "abc", "ffffffffffff"]), "status": st.sampled_from(["normal", "x"]),
               "source": st.sampled_from(["self_built", "x"]), "district": st.sampled_from(["110101", "x"])}


def tile_paths() -> st.SearchStrategy[str]:
    number = segments(st.integers(0, 20).map(str))
    return st.tuples(layer_lists(), number, number, number).map(lambda p: f"/tiles/{p[0]}/{p[1]}/{p[2]}/{p[3]}.mvt")


def tiles_requests(w: Any, creds: dict[str, str]) -> st.SearchStrategy[Request]:
    path = st.one_of(tile_paths(), layer_lists().map(lambda layers: f"/tiles/{layers}.json"), st.just("/tiles/style.json"),
                     segments(st.just("x")).map(lambda s: f"/tiles/{s}"))
    return st.builds(Request, st.sampled_from(["GET", "HEAD", "POST"]), path,
                     query_strings({**TILE_PARAMS, "t": st.sampled_from([creds["tile"], "x", ""])}),
                     headers=st.sampled_from([bearer(creds["city"]), bearer(creds["district"]), {}]))


def signed_tile_requests(w: Any, creds: dict[str, str]) -> st.SearchStrategy[Request]:
    """The fast path: a tile URL with ?t= is answered below Django."""
    token = st.one_of(st.just(creds["tile"]), st.just(creds["tile"]), st.text(max_size=40).map(quote),
                      st.just(creds["tile"] + "x"))
    query = st.tuples(token, query_strings(TILE_PARAMS)).map(lambda tq: f"t={tq[0]}&{tq[1]}")
    return st.builds(Request, st.sampled_from(["GET", "HEAD"]), tile_paths(), query, content_type=st.just(""),
                     headers=st.sampled_from([{"If-None-Match": '"x"'}, {"Accept-Encoding": "gzip"}, {}]))


def page_requests(paths: list[str]) -> Callable[[Any, dict[str, str]], st.SearchStrategy[Request]]:
    def requests(w: Any, creds: dict[str, str]) -> st.SearchStrategy[Request]:
        return st.builds(Request, st.sampled_from(["GET", "GET", "POST"]), st.sampled_from(paths),
                         query_strings({"next": st.just("/"), "bbox": st.just("1,2,3,4")}),
                         headers=st.sampled_from([bearer(creds["city"]), {}]))
    return requests


def login_requests(w: Any, creds: dict[str, str]) -> st.SearchStrategy[Request]:
    form = st.fixed_dictionaries({"username": st.sampled_from(["", "nobody", "a\x00b", "x" * 300]),
                                  "password": st.sampled_from(["", "x", "\x00"])}).map(
        lambda f: "&".join(f"{k}={quote(v)}" for k, v in f.items()).encode())
    return st.one_of(st.builds(Request, st.just("POST"), st.sampled_from(["/login/", "/logout/"]),
                               query_strings({"next": st.sampled_from(["/", "//evil.example", "javascript:x"])}),
                               st.one_of(form, st.binary(max_size=40)), st.just("application/x-www-form-urlencoded")),
                     st.builds(Request, st.just("GET"), st.just("/login/"), query_strings({"next": st.just("/")})))


TASK_ACTIONS = ("file", "dispatch", "reassign", "accept", "arrive", "feedback", "verify", "rework", "close", "extend",
                "cancel", "merge")
TASK_PARAMS = {"state": st.sampled_from(["reported", "filed,closed", "nope", ""]), "overdue": st.sampled_from(["true", "x"]),
               "category": st.sampled_from(["E0501", "x" * 40]), "limit": numbers_as_text(-5, 500),
               "before": numbers_as_text(-5, 10**20), "q": st.sampled_from(["T2026", "0000012", "\x00"]),
               "district": st.sampled_from(["110101", "1101", "x"]), "start": st.sampled_from(["2026-11-01", "2026-13-01"]),
               "end": st.sampled_from(["2026-11-30", "1900-01-01", "x"]),
               "level": st.sampled_from(["district", "street", "grid", "city", "x"])}


def dispatch_requests(w: Any, creds: dict[str, str]) -> st.SearchStrategy[Request]:
    """The dispatch API (command/api.py): task ids of every size, hostile bodies of the right shape."""
    task_id = segments(st.one_of(st.integers(-5, 10**6).map(str), st.just("9" * 30), st.just("1.5")))
    unit = st.fixed_dictionaries({"kind": maybe(st.sampled_from(["officer", "vehicle"])), "id": values})
    body = st.fixed_dictionaries({}, optional={
        "lon": maybe(st.floats(116.0, 116.6)), "lat": maybe(st.floats(39.7, 40.1)),
        "category": maybe(st.sampled_from(["E0501", "C0101"])), "source": maybe(st.sampled_from(["patrol", "complaint"])),
        "description": values, "reason": values, "note": values, "hours": values, "into": values,
        "units": maybe(st.lists(maybe(unit), max_size=3)), "override_reason": values, "photos": values,
        "version": values})
    who = st.sampled_from([bearer(creds["city"]), bearer(creds["district"]), bearer(creds["officer"]), {}])
    headers = st.tuples(who, st.sampled_from([{}, {"Idempotency-Key": "k1"}, {"If-Match": '"1"'}, {"If-Match": "x"}]))
    path = st.one_of(st.just("/api/tasks"), task_id.map(lambda t: f"/api/tasks/{t}"),
                     task_id.map(lambda t: f"/api/tasks/{t}/recommendations"),
                     st.tuples(task_id, st.sampled_from(TASK_ACTIONS)).map(lambda ta: f"/api/tasks/{ta[0]}/{ta[1]}"),
                     task_id.map(lambda t: f"/api/tasks/{t}/photos"), task_id.map(lambda t: f"/api/tasks/{t}/photos/{t}"),
                     st.sampled_from(["/api/kpis", "/api/categories", "/api/me", "/api/schema", "/api/", "/api/docs"]))
    return st.builds(Request, st.sampled_from(["GET", "POST", "POST", "DELETE"]), path, query_strings(TASK_PARAMS),
                     body_bytes(body), st.sampled_from(["application/json", "multipart/form-data; boundary=x", ""]),
                     headers.map(lambda hh: {**hh[0], **hh[1]}))


def tracks_requests(w: Any, creds: dict[str, str]) -> st.SearchStrategy[Request]:
    device = segments(st.sampled_from([creds["device_id"], "nope", "a" * 70]))
    params = {"from": st.sampled_from([now_iso(3600), "x", "1" * 401]), "to": st.sampled_from([now_iso(0), "", "9999"])}
    return st.builds(Request, st.sampled_from(["GET", "POST"]), device.map(lambda d: f"/api/tracks/{d}"),
                     query_strings(params), headers=st.sampled_from([bearer(creds["district"]), bearer(creds["officer"]), {}]))


ENDPOINTS = (
    Endpoint("positions", ("api/positions",), positions_requests, via_asgi=True),
    Endpoint("osmand", ("ingest/osmand",), osmand_requests, via_asgi=True),
    Endpoint("pushes", ("api/pushes",), pushes_requests),
    Endpoint("push_detail", ("api/pushes/<uuid:push_id>",), push_detail_requests),
    Endpoint("ogc", ("ogc/^$", "ogc/^conformance/?$", "ogc/^collections/?$", "ogc/^collections/(?P<collection_id>[^/]+)/?$",
                     "ogc/^collections/(?P<collection_id>[^/]+)/items/?$",
                     "ogc/^collections/(?P<collection_id>[^/]+)/items/(?P<feature_id>[^/]+)/?$", "ogc/^(?P<rest>.+)$"),
             ogc_requests),
    Endpoint("tiles", ("tiles/style.json", r"tiles/^(?P<layers>[^/]+)/(?P<z>[^/]+)/(?P<x>[^/]+)/(?P<y>[^/]+)\.mvt$",
                       r"tiles/^(?P<layers>[^/]+)\.json$", "tiles/^(?P<rest>.*)$"), tiles_requests),
    Endpoint("signed_tiles", (), signed_tile_requests, via_asgi=True),
    Endpoint("map_pages", ("", "api/map/districts.geojson", "api/map/district-labels.geojson"),
             page_requests(["/", "/api/map/districts.geojson", "/api/map/district-labels.geojson", "/no/such/page"])),
    Endpoint("dispatch", ("api/", "api/categories", "api/docs", "api/kpis", "api/me", "api/schema", "api/tasks",
                          "api/tasks/<task_id>", *(f"api/tasks/<task_id>/{a}" for a in TASK_ACTIONS),
                          "api/tasks/<task_id>/photos", "api/tasks/<task_id>/photos/<photo_id>",
                          "api/tasks/<task_id>/recommendations"), dispatch_requests),
    Endpoint("tracks", ("api/tracks/<str:device_id>",), tracks_requests),
    Endpoint("mode_pages", ("console", "wall", "field", "favicon.ico", "field-sw.js", "field/manifest.webmanifest",
                            "healthz", "readyz", "metrics", "i18n/setlang/", "ogc/^api/?$", "ogc/^api\\.html$"),
             page_requests(["/console", "/wall", "/field", "/favicon.ico", "/field-sw.js", "/field/manifest.webmanifest",
                            "/healthz", "/readyz", "/metrics", "/i18n/setlang/", "/ogc/api", "/ogc/api.html"])),
    Endpoint("map_api", ("api/map/labels.geojson", "api/map/search", "api/map/summary"),
             page_requests(["/api/map/labels.geojson", "/api/map/search?q=%00", "/api/map/search?q=东华门",
                            "/api/map/summary", "/api/map/labels.geojson?bbox=1,2,3"])),
    # Each refused login costs a password hash (deliberately slow): fewer examples.
    Endpoint("login", ("login/", "logout/"), login_requests, examples=min(FUZZ_EXAMPLES, 8)),
)
NOT_FUZZED = {"admin/": "Django's own admin: staff only, HTML, not an API"}


def routes(resolver: URLResolver | None = None, prefix: str = "") -> list[str]:
    """Every route of the URL configuration, as prefix + pattern (an admin/ include as one)."""
    found = []
    for entry in (resolver or get_resolver()).url_patterns:
        pattern = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver) and pattern not in NOT_FUZZED:
            found.extend(routes(entry, pattern))
        elif isinstance(entry, URLPattern | URLResolver):
            found.append(pattern)
    return found


def test_every_route_is_fuzzed() -> None:
    covered = {route for endpoint in ENDPOINTS for route in endpoint.routes} | set(NOT_FUZZED)
    assert set(routes()) - covered == set(), "add the new route to ENDPOINTS (or to NOT_FUZZED, with a reason)"
    assert covered - set(routes()) == set(), "ENDPOINTS names a route that is gone"


def credentials(w: Any) -> dict[str, str]:
    device = w.officers["a1"].device_id
    tilejson = in_db_thread(lambda: Client().get("/tiles/officers,cameras.json", headers=bearer(w.api_tokens["city"])))
    tile = re.search(r"[?&]t=([^&]+)", tilejson.json()["tiles"][0])
    assert tile is not None
    return {"gateway": w.gateway_token, "device": w.device_tokens[device], "device_id": device,
            "dispatcher": w.api_tokens["district_a"], "officer": w.api_tokens["officer_a1"],
            "district": w.api_tokens["district_a"], "city": w.api_tokens["city"], "tile": tile.group(1)}


def server_json(body: bytes | str) -> Any:
    """What the server sent, parsed as JSON (RFC 8259: UTF-8, no NaN or Infinity; an escaped NUL
    or surrogate is JSON, and problems may quote the client's input)."""
    def no_constant(name: str) -> Any:
        raise AssertionError(f"the server sent {name}, which is no JSON")

    text = body.decode("utf-8") if isinstance(body, bytes) else body
    return json.loads(text, parse_constant=no_constant)


def call(request: Request, via_asgi: bool, client: Client) -> tuple[int, dict[str, str], bytes]:
    url = request.path + (f"?{request.query}" if request.query else "")
    if via_asgi:
        headers = [(b"host", b"testserver"), *((k.lower().encode(), v.encode()) for k, v in request.headers.items())]
        if request.content_type:
            headers.append((b"content-type", request.content_type.encode()))
        response = run(HttpCommunicator(application, request.method, url, body=request.body, headers=headers)
                       .get_response(timeout=60))
        return response["status"], {k.decode().lower(): v.decode() for k, v in response["headers"]}, response["body"]
    response = in_db_thread(lambda: client.generic(request.method, url, request.body, request.content_type or "",
                                                   headers=request.headers))
    return response.status_code, {k.lower(): v for k, v in response.items()}, response.content


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_http_endpoint_never_fails_on_hostile_input(endpoint: Endpoint, world: Any) -> None:  # noqa: F811
    creds = credentials(world)
    client = Client()  # one: each loads the middleware, and WhiteNoise's scan of the static files is slow

    @settings(FUZZ, max_examples=endpoint.examples)
    @given(request=endpoint.requests(world, creds))
    def check(request: Request) -> None:
        status, headers, body = call(request, endpoint.via_asgi, client)
        assert status < 500, (status, body[:300])
        content_type = headers.get("content-type", "")
        if status >= 400 and request.path.startswith(API_PREFIXES):
            assert content_type == PROBLEM_CONTENT_TYPE, (status, content_type, body[:200])
            if request.method != "HEAD":
                problem = server_json(body)
                assert problem["status"] == status and problem["title"], problem
        elif "json" in content_type and body and request.method != "HEAD":
            server_json(body)

    check()


# --- WebSockets -------------------------------------------------------------------------------

# Messages that answer a frame (others, such as a stream's frames, may arrive in between).
ANSWERS = {"error", "pong", "snapshot", "resync", "resumed", "fix_result", "acked"}


def frames_of(kind: str, w: Any) -> st.SearchStrategy[str]:
    ref = st.one_of(st.none(), st.integers(), st.text(max_size=8), values)
    if kind == "ping":
        shaped = st.fixed_dictionaries({"type": st.just("ping")}, optional={"ref": ref})
    elif kind == "subscribe":
        shaped = st.fixed_dictionaries({"type": st.just("subscribe")}, optional={
            "bbox": maybe(st.lists(maybe(st.floats(-200, 200)), max_size=5)),
            "layers": maybe(st.lists(maybe(st.sampled_from(["officers", "vehicles"])), max_size=3)),
            "district": maybe(st.sampled_from([DISTRICT_A, "110101", "1101"])), "street": maybe(st.sampled_from([STREET_A1])),
            "resume": maybe(st.fixed_dictionaries({"stream": maybe(st.text(max_size=8)), "seq": maybe(st.integers(-1, 10))})),
            "ref": ref})
    elif kind in ("fix", "fixes"):
        fixes = fix_documents([w.officers["a1"].device_id, w.officers["a2"].device_id])
        body = {"fix": maybe(fixes)} if kind == "fix" else {"fixes": maybe(st.lists(maybe(fixes), max_size=4))}
        shaped = st.fixed_dictionaries({"type": st.just(kind), **body},
                                       optional={"crs": maybe(st.sampled_from(["wgs84", "gcj02"])), "ref": ref})
    elif kind == "ack":
        shaped = st.fixed_dictionaries({"type": st.just("ack"), "id": maybe(st.uuids().map(str))}, optional={"ref": ref})
    else:  # a type no handler has, or none
        shaped = st.fixed_dictionaries({}, optional={"type": values, "ref": ref})
    return json_texts(shaped)


SOCKETS = {"map": (MapConsumer, "/ws/map", "city"), "field": (FieldConsumer, "/ws/field", "device")}
MESSAGE_TYPES = {"map": ("ping", "subscribe", "unknown"), "field": ("ping", "fix", "fixes", "ack", "unknown")}


def test_every_message_type_is_fuzzed() -> None:
    for name, (consumer, _, _) in SOCKETS.items():
        assert set(consumer().handlers()) | {"unknown"} == set(MESSAGE_TYPES[name]), name


async def answers_until_pong(socket: WebsocketCommunicator, ref: str) -> list[dict[str, Any]]:
    """Every message up to the pong of `ref`, each parsed as strict JSON."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    received: list[dict[str, Any]] = []
    while True:
        message = server_json(await socket.receive_from(timeout=max(0.01, deadline - loop.time())))
        if message.get("type") == "pong" and message.get("ref") == ref:
            return received
        received.append(message)


@pytest.mark.parametrize(("socket_name", "kind"), [(s, k) for s, kinds in MESSAGE_TYPES.items() for k in kinds])
def test_socket_message_never_fails_on_hostile_input(socket_name: str, kind: str, world: Any) -> None:  # noqa: F811
    """One socket takes every example in turn: it must answer each and stay open through all."""
    _, path, who = SOCKETS[socket_name]
    token = world.api_tokens[who] if who == "city" else world.device_tokens[world.officers["a1"].device_id]
    loop = asyncio.new_event_loop()
    socket = WebsocketCommunicator(application, f"{path}?token={token}")
    sent = 0

    async def open_socket() -> None:
        assert (await socket.connect(timeout=WAIT))[0]
        assert server_json(await socket.receive_from(timeout=WAIT))["type"] == "hello"

    async def exchange(frame: str) -> None:
        nonlocal sent
        sent += 1
        await socket.send_input({"type": "websocket.receive", "text": frame})  # (send_to refuses "")
        await socket.send_to(text_data=json.dumps({"type": "ping", "ref": f"after-{sent}"}))
        received = await answers_until_pong(socket, f"after-{sent}")
        assert any(m.get("type") in ANSWERS for m in received), (frame[:200], received)
        errors = [m for m in received if m.get("type") == "error"]
        assert all(e["error"] != "server_error" for e in errors), (frame[:200], errors)

    @FUZZ
    @given(frame=frames_of(kind, world))
    def check(frame: str) -> None:
        loop.run_until_complete(asyncio.wait_for(exchange(frame), timeout=60))

    try:
        loop.run_until_complete(open_socket())
        check()
        loop.run_until_complete(socket.send_to(bytes_data=b"\x00\xff"))  # a binary frame too
        loop.run_until_complete(exchange("{}"))
    finally:
        loop.run_until_complete(socket.disconnect())
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=2))
        loop.close()
