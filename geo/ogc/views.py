"""OGC API - Features Part 1 (Core, GeoJSON) and Part 2 (CRS by reference), read-only.

Views stay thin: parameters are checked in geo.ogc.params, SQL is built in geo.ogc.query, and
the collections are declared in geo.ogc.registry. Every endpoint needs an authenticated user (a
session or a bearer token); errors are RFC 9457 problem details."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse

from accounts.jurisdiction import Jurisdiction
from config.problems import Problem, problem_view, unauthorized
from geo.extent import map_extent
from geo.ogc import openapi, registry
from geo.ogc.limits import HEAVY, heavy_limit
from geo.ogc.params import (
    CRS84,
    LAT_LON_CRS,
    STORAGE_CRS,
    SUPPORTED_CRS,
    ItemsQuery,
    check_known_params,
    parse_feature_query,
    parse_items_query,
)
from geo.ogc.query import fetch_feature, fetch_page
from geo.ogc.stream import PageBody, streaming_response

JSON = "application/json"
GEOJSON = "application/geo+json"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
]


def ogc_endpoint(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """GET only, authenticated, errors as problem details."""

    @problem_view  # type: ignore[arg-type]  # it passes any response through; typed for HttpResponse
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method not in ("GET", "HEAD"):
            raise Problem(405, f"{request.method} is not allowed: this API is read-only.",
                          headers={"Allow": "GET, HEAD"})
        if not request.user.is_authenticated:
            raise unauthorized()
        response = view(request, *args, **kwargs)
        # Answers depend on who asks (jurisdiction): no shared cache may keep them.
        response["Cache-Control"] = "private, no-store"
        response["Vary"] = "Authorization, Cookie"
        return response

    return wrapper


def json_response(body: dict[str, Any] | str, content_type: str = JSON, **headers: str) -> HttpResponse:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    response = HttpResponse(text, content_type=content_type)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def link(href: str, rel: str, type_: str = JSON, title: str | None = None) -> dict[str, str]:
    result = {"href": href, "rel": rel, "type": type_}
    if title:
        result["title"] = title
    return result


def absolute(request: HttpRequest, name: str, *args: str) -> str:
    return request.build_absolute_uri(reverse(f"ogc:{name}", args=args))


def content_crs(crs: str) -> str:
    return f"<{crs}>"


def collection_or_404(collection_id: str) -> registry.Collection:
    collection = registry.get(collection_id)
    if collection is None:
        raise Problem(404, f"There is no collection {collection_id!r}.")
    return collection


@ogc_endpoint
def landing(request: HttpRequest) -> HttpResponse:
    check_known_params(request.GET, {"f"})
    return json_response({
        "title": "OneMap OGC API - Features",
        "description": "The one map of Beijing's urban-management law enforcement: boundaries, "
                       "cameras, the hotspot ledger, officers and vehicles. CGCS2000 (EPSG:4490).",
        "links": [
            link(absolute(request, "landing"), "self", title="This document"),
            link(absolute(request, "api"), "service-desc", openapi.OPENAPI_MEDIA_TYPE,
                 title="The API definition (OpenAPI 3.0)"),
            link(absolute(request, "api-doc"), "service-doc", "text/html", title="The API documentation"),
            link(absolute(request, "conformance"), "conformance", title="Conformance classes"),
            link(absolute(request, "collections"), "data", title="Collections"),
        ],
    })


@ogc_endpoint
def conformance(request: HttpRequest) -> HttpResponse:
    check_known_params(request.GET, {"f"})
    return json_response({
        "conformsTo": CONFORMANCE,
        "links": [link(absolute(request, "conformance"), "self")],
    })


def api_root(request: HttpRequest) -> str:
    return absolute(request, "landing").rstrip("/")


@ogc_endpoint
def api(request: HttpRequest) -> HttpResponse:
    check_known_params(request.GET, {"f"})
    return json_response(openapi.document(api_root(request)), openapi.OPENAPI_MEDIA_TYPE)


@ogc_endpoint
def api_doc(request: HttpRequest) -> HttpResponse:
    check_known_params(request.GET, set())
    return HttpResponse(openapi.html(openapi.document(api_root(request))), content_type="text/html; charset=utf-8")


def describe(request: HttpRequest, collection: registry.Collection, extent: list[float]) -> dict[str, Any]:
    own = absolute(request, "collection", collection.id)
    return {
        "id": collection.id,
        "title": collection.title,
        "description": collection.description,
        "itemType": "feature",
        "extent": {"spatial": {"bbox": [extent], "crs": CRS84}},
        "crs": list(SUPPORTED_CRS),
        "storageCrs": STORAGE_CRS,
        "links": [
            link(own, "self", title=collection.title),
            link(absolute(request, "items", collection.id), "items", GEOJSON, title="Features"),
        ],
    }


@ogc_endpoint
def collections(request: HttpRequest) -> HttpResponse:
    check_known_params(request.GET, {"f"})
    extent = map_extent()
    return json_response({
        "links": [link(absolute(request, "collections"), "self")],
        "crs": list(SUPPORTED_CRS),
        "collections": [describe(request, c, extent) for c in registry.COLLECTIONS],
    })


@ogc_endpoint
def collection(request: HttpRequest, collection_id: str) -> HttpResponse:
    check_known_params(request.GET, {"f"})
    return json_response(describe(request, collection_or_404(collection_id), map_extent()))


def page_url(request: HttpRequest, **changes: str | None) -> str:
    """This request's URL with some parameters changed (None: removed); every other one is kept."""
    query = request.GET.copy()
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return request.build_absolute_uri(request.path) + "?" + query.urlencode()


def next_limit(limit: int) -> int:
    """The page size a `next` link asks for: twice this page's, up to OGC_NEXT_LIMIT_MAX, never
    less than this page's. Whoever follows next links is reading the whole collection (GDAL,
    QGIS, scripts), and GDAL before 3.8 always starts at limit=10: 14,180 requests for the cameras.
    Every request still gets at most the limit it asks for."""
    return max(limit, min(2 * limit, settings.OGC_NEXT_LIMIT_MAX, settings.OGC_MAX_LIMIT))


def page_links(request: HttpRequest, coll: registry.Collection, query: ItemsQuery, returned: int,
               matched: int | None, last_key: Any) -> list[dict[str, str]]:
    links = [
        link(request.build_absolute_uri(), "self", GEOJSON),
        link(absolute(request, "collection", coll.id), "collection", JSON, title=coll.title),
    ]
    if query.offset > 0:
        links.append(link(page_url(request, offset=str(max(0, query.offset - query.limit))), "prev", GEOJSON))
    # A cursor page has no count: a full page may have more after it (an empty last page ends it).
    more = returned == query.limit if matched is None else query.offset + returned < matched
    if more and last_key is not None:
        links.append(link(page_url(request, offset=None, cursor=str(last_key), limit=str(next_limit(query.limit))),
                          "next", GEOJSON))
    return links


def time_stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def streamed_items(request: HttpRequest, coll: registry.Collection, query: ItemsQuery) -> HttpResponseBase:
    """A heavy page: a slot first (429/503 if none, before any SQL), then the features in chunks."""
    slot = HEAVY.take(request.user.pk)
    head = json.dumps({"type": "FeatureCollection", "timeStamp": time_stamp()}, ensure_ascii=False)[:-1]

    def trailer(returned: int, matched: int | None, last_key: Any) -> str:
        members: dict[str, Any] = {"numberReturned": returned}
        if matched is not None:
            members["numberMatched"] = matched
        members["links"] = page_links(request, coll, query, returned, matched, last_key)
        return "], " + json.dumps(members, ensure_ascii=False)[1:]

    try:
        body = PageBody(coll, query, Jurisdiction.of(request.user), head + ', "features": [', trailer, slot)
    except BaseException:
        slot.release()
        raise
    response = streaming_response(request, body, GEOJSON)
    response["Content-Crs"] = content_crs(query.crs)
    return response


@ogc_endpoint
def items(request: HttpRequest, collection_id: str) -> HttpResponseBase:
    coll = collection_or_404(collection_id)
    query = parse_items_query(coll, request.GET)
    if query.limit > heavy_limit():
        return streamed_items(request, coll, query)
    page = fetch_page(coll, query, Jurisdiction.of(request.user))
    members: dict[str, Any] = {"type": "FeatureCollection"}
    if page.number_matched is not None:
        members["numberMatched"] = page.number_matched
    members |= {
        "numberReturned": page.number_returned,
        "timeStamp": time_stamp(),
        "links": page_links(request, coll, query, page.number_returned, page.number_matched, page.last_key),
    }
    head = json.dumps(members, ensure_ascii=False)
    # The features arrive as one JSON text from PostgreSQL: splice them in, do not parse them.
    body = f'{head[:-1]}, "features": [{page.features}]}}'
    return json_response(body, GEOJSON, Content_Crs=content_crs(query.crs))


@ogc_endpoint
def feature(request: HttpRequest, collection_id: str, feature_id: str) -> HttpResponse:
    coll = collection_or_404(collection_id)
    crs = parse_feature_query(request.GET)
    text = fetch_feature(coll, feature_id, Jurisdiction.of(request.user), flip_axes=crs in LAT_LON_CRS)
    if text is None:
        # Outside the user's jurisdiction reads the same as absent: existence is not revealed.
        raise Problem(404, f"There is no feature {feature_id!r} in {coll.id!r}.")
    links = json.dumps([
        link(request.build_absolute_uri(), "self", GEOJSON),
        link(absolute(request, "collection", coll.id), "collection", JSON, title=coll.title),
    ], ensure_ascii=False)
    body = f'{text.rstrip()[:-1]}, "links": {links}}}'
    return json_response(body, GEOJSON, Content_Crs=content_crs(crs))


@ogc_endpoint
def not_found(request: HttpRequest, rest: str) -> HttpResponse:
    raise Problem(404, f"/ogc/{rest} is not a resource of this API.")
