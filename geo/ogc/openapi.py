"""The API definition (OpenAPI 3.0) of the OGC API, generated from the collection registry.

OGC API - Features Part 1 asks for it (the landing page's `service-desc` link), and clients read
their paging from it: GDAL >= 3.8 looks up `/collections/{id}/items` in `paths`, follows the
`limit` parameter's local `$ref`, and pages with min(max(1000, default), maximum) features
(without it, GDAL pages with 10 and took 55 minutes for the 141,800 cameras). So every collection
gets its own items path (a templated `{collectionId}` path would not be found), and `limit` is a
component parameter with its real default and maximum.

Everything here comes from the registry and params: a new collection or filter appears without
touching this file."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from geo.ogc import registry
from geo.ogc.params import DEFAULT_LIMIT, MAX_OFFSET, SUPPORTED_CRS

OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.0"
PROBLEM = "application/problem+json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def components() -> dict[str, Any]:
    crs_enum = list(SUPPORTED_CRS)
    return {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "An API token from `manage.py token USERNAME`, or a "
                                                      "logged-in session."}},
        "parameters": {
            "limit": {"name": "limit", "in": "query", "required": False, "style": "form", "explode": False,
                      "description": "Features per page. Pages of more than "
                                     f"{settings.OGC_HEAVY_LIMIT} are streamed and limited in number at once "
                                     "(429/503 with Retry-After).",
                      "schema": {"type": "integer", "minimum": 1, "maximum": settings.OGC_MAX_LIMIT,
                                 "default": DEFAULT_LIMIT}},
            "bbox": {"name": "bbox", "in": "query", "required": False, "style": "form", "explode": False,
                     "description": "minx,miny,maxx,maxy (or 6 numbers with heights), in bbox-crs axis order.",
                     "schema": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}},
            "bbox-crs": {"name": "bbox-crs", "in": "query", "required": False,
                         "schema": {"type": "string", "format": "uri", "enum": crs_enum}},
            "crs": {"name": "crs", "in": "query", "required": False,
                    "schema": {"type": "string", "format": "uri", "enum": crs_enum}},
            "offset": {"name": "offset", "in": "query", "required": False,
                       "description": "Features to skip. Kept for clients that build their own page URLs; the "
                                      "`next` links use `cursor`, which is as cheap on any page.",
                       "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}},
            "cursor": {"name": "cursor", "in": "query", "required": False,
                       "description": "The id of the last feature of the previous page: the page continues "
                                      "after it (ids in ascending order). Take it from a `next` link.",
                       "schema": {"type": "string"}},
            "f": {"name": "f", "in": "query", "required": False,
                  "schema": {"type": "string", "enum": ["json", "geojson"]}},
        },
        "responses": {
            "problem": {"description": "A problem (RFC 9457)",
                        "content": {PROBLEM: {"schema": {"type": "object", "required": ["type", "title", "status"]}}}},
        },
    }


def filter_parameter(flt: registry.Filter) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "string"}
    if flt.choices:
        item["enum"] = list(flt.choices)
    elif flt.pattern is not None:
        item["pattern"] = flt.pattern.pattern
    return {"name": flt.param, "in": "query", "required": False, "style": "form", "explode": False,
            "description": f"Comma-separated values, any of: {flt.describe()}.",
            "schema": {"type": "array", "items": item}}


def errors(*statuses: int) -> dict[str, Any]:
    return {str(status): {"$ref": "#/components/responses/problem"} for status in statuses}


def json_response(description: str, media_type: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": {"type": "object"}}}}


def collection_paths(collection: registry.Collection) -> dict[str, Any]:
    base = f"/collections/{collection.id}"
    id_schema: dict[str, Any] = ({"type": "integer", "minimum": 1} if collection.id_is_integer
                                 else {"type": "string", "pattern": collection.id_pattern.pattern})
    items_parameters = [ref(name) for name in ("limit", "bbox", "bbox-crs", "crs", "offset", "cursor", "f")]
    items_parameters += [filter_parameter(flt) for flt in collection.filters]
    return {
        base: {"get": {"summary": collection.title, "operationId": f"describe_{collection.id}",
                       "tags": [collection.id], "parameters": [ref("f")],
                       "responses": {"200": json_response("The collection"), **errors(400, 401, 404)}}},
        f"{base}/items": {"get": {
            "summary": f"{collection.title}: features", "description": collection.description,
            "operationId": f"items_{collection.id}", "tags": [collection.id], "parameters": items_parameters,
            "responses": {"200": json_response("A page of features (GeoJSON)", "application/geo+json"),
                          **errors(400, 401, 404, 429, 503)}}},
        f"{base}/items/{{featureId}}": {"get": {
            "summary": f"{collection.title}: one feature", "operationId": f"feature_{collection.id}",
            "tags": [collection.id],
            "parameters": [{"name": "featureId", "in": "path", "required": True, "schema": id_schema},
                           ref("crs"), ref("f")],
            "responses": {"200": json_response("A feature (GeoJSON)", "application/geo+json"),
                          **errors(400, 401, 404)}}},
    }


def document(server_url: str) -> dict[str, Any]:
    """The whole definition; server_url is the API's root (the landing page) without a trailing /."""
    paths: dict[str, Any] = {
        "/": {"get": {"summary": "Landing page", "operationId": "landing", "parameters": [ref("f")],
                      "responses": {"200": json_response("Links to the API definition, conformance and data"),
                                    **errors(401)}}},
        "/api": {"get": {"summary": "This API definition", "operationId": "api",
                         "responses": {"200": json_response("OpenAPI 3.0", OPENAPI_MEDIA_TYPE), **errors(401)}}},
        "/conformance": {"get": {"summary": "Conformance classes", "operationId": "conformance",
                                 "parameters": [ref("f")],
                                 "responses": {"200": json_response("The conformance classes"), **errors(401)}}},
        "/collections": {"get": {"summary": "Collections", "operationId": "collections", "parameters": [ref("f")],
                                 "responses": {"200": json_response("The collections"), **errors(401)}}},
    }
    for collection in registry.COLLECTIONS:
        paths |= collection_paths(collection)
    return {
        "openapi": "3.0.3",
        "info": {"title": "OneMap OGC API - Features", "version": "1.0.0",
                 "description": "The one map's data, read-only: boundaries, cameras, the hotspot ledger, "
                                "officers and vehicles. CGCS2000 (EPSG:4490); coordinates in CRS84 order "
                                "unless crs says otherwise."},
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "tags": [{"name": c.id, "description": c.title} for c in registry.COLLECTIONS],
        "paths": paths,
        "components": components(),
    }


def html(doc: dict[str, Any]) -> str:
    """The `service-doc`: the same definition as a plain HTML page (nothing loaded from elsewhere)."""
    rows = []
    for path, item in doc["paths"].items():
        operation = item["get"]
        names = []
        for parameter in operation.get("parameters", []):
            if "$ref" in parameter:
                parameter = doc["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
            names.append(parameter["name"])
        rows.append(format_html("<tr><td><code>GET {}</code></td><td>{}</td><td>{}</td></tr>",
                                doc["servers"][0]["url"] + path, operation.get("summary", ""), ", ".join(names)))
    parameters = [format_html("<dt><code>{}</code></dt><dd>{}</dd>", name, p.get("description", ""))
                  for name, p in doc["components"]["parameters"].items()]
    return format_html(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{}</title></head><body>'
        "<h1>{}</h1><p>{}</p><p>Machine-readable: <a href=\"{}\">OpenAPI 3.0</a>.</p>"
        "<table><tr><th>Request</th><th>What</th><th>Parameters</th></tr>{}</table>"
        "<h2>Parameters</h2><dl>{}</dl></body></html>",
        doc["info"]["title"], doc["info"]["title"], doc["info"]["description"], doc["servers"][0]["url"] + "/api",
        mark_safe("".join(rows)), mark_safe("".join(parameters)))  # noqa: S308 (built with format_html)
