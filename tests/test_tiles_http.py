"""Vector tiles over HTTP: signed URLs, TileJSON, the map style, caching, freshness, gzip, the
Redis-shared cache, and GDAL reading a served tile."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.jurisdiction import Jurisdiction
from geo.models import HotspotPoint
from tests.tiles_support import (  # noqa: F401  (autouse fixtures)
    CENTRE,
    counts,
    decode,
    derived_tables,
    fresh_cache,
    login_as,
    refresh_derived_tables,
    sql_ids,
    tile_of,
)
from tiles import cache as tile_cache
from tiles import registry
from tiles.auth import issue_token

Z14 = tile_of(*CENTRE, 14)


def template(client, layers: str, query: str = "") -> str:  # type: ignore[no-untyped-def]
    """The tile URL template of a layer list's TileJSON, relative to the server."""
    body = client.get(f"/tiles/{layers}.json" + (f"?{query}" if query else "")).json()
    return body["tiles"][0].removeprefix("http://testserver")


def fill(url: str, z: int, x: int, y: int) -> str:
    return url.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))


@pytest.mark.django_db
def test_tilejson_is_tilejson_3(client) -> None:  # type: ignore[no-untyped-def]
    login_as(client, "commander")
    response = client.get("/tiles/cameras,hotspots.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["tilejson"] == "3.0.0"
    # The layers in the registry's order, whatever the request's: one URL (and cache key) per set.
    assert re.fullmatch(r"http://testserver/tiles/hotspots,cameras/\{z\}/\{x\}/\{y\}\.mvt\?v=[0-9a-f]+&t=\S+",
                        body["tiles"][0])
    assert body["minzoom"] == 0 and body["maxzoom"] == 16
    west, south, east, north = body["bounds"]
    assert west < CENTRE[0] < east and south < CENTRE[1] < north
    layers = {layer["id"]: layer for layer in body["vector_layers"]}
    assert set(layers) == {"cameras", "hotspots"}
    for layer in registry.LAYERS[3:5]:
        assert set(layers[layer.id]["fields"]) == {name for name, _ in layer.properties} | {"count", "cluster"}
        assert all(isinstance(v, str) for v in layers[layer.id]["fields"].values())
    assert "minzoom" in layers["cameras"] and "maxzoom" in layers["cameras"]


@pytest.mark.django_db
def test_tilejson_carries_filters_into_the_tile_urls(client) -> None:  # type: ignore[no-untyped-def]
    login_as(client, "commander")
    url = template(client, "cameras", "source=self_built")
    assert "source=self_built" in url
    features = decode(client.get(fill(url, *Z14)))["cameras"]["features"]
    assert {f["properties"]["source"] for f in features} == {"self_built"}
    assert client.get("/tiles/cameras.json?source=drone").status_code == 400


@pytest.mark.django_db
def test_style_is_a_self_contained_maplibre_style(client) -> None:  # type: ignore[no-untyped-def]
    login_as(client, "dongcheng")
    style = client.get("/tiles/style.json").json()
    assert style["version"] == 8
    assert "glyphs" not in style and "sprite" not in style
    sources = style["sources"]
    for layer in style["layers"]:
        assert layer["type"] == "background" or layer["source"] in sources, layer["id"]
        if sources.get(layer.get("source"), {}).get("type") == "vector":
            assert registry.get(layer["source-layer"]) is not None, layer["id"]
    urls = re.findall(r'"(https?://[^"]+)"', json.dumps(style))
    assert urls and all(u.startswith("http://testserver/") for u in urls), "nothing from another host"
    assert {"onemap", "live"} <= set(sources)
    # The user's own district is the highlighted one.
    assert "110101" in json.dumps(next(x for x in style["layers"] if x["id"] == "district-fill"))


@pytest.mark.django_db
def test_signed_tile_url_works_without_a_session(client) -> None:  # type: ignore[no-untyped-def]
    login_as(client, "dongcheng")
    url = template(client, "officers")
    client.logout()
    assert client.get(fill(url, *tile_of(*CENTRE, 12))).status_code == 200
    # ... and keeps the jurisdiction it was issued for.
    features = decode(client.get(fill(url, *tile_of(*CENTRE, 12))))["officers"]["features"]
    assert {f["properties"]["district"] for f in features} == {"110101"}


@pytest.mark.django_db
@pytest.mark.parametrize("case", ["forged", "tampered", "expired", "none"])
def test_bad_or_missing_credentials_are_refused(client, case) -> None:  # type: ignore[no-untyped-def]
    city = Jurisdiction("city")
    token = {
        "forged": "1~city~~~9999999999:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "tampered": issue_token(7, Jurisdiction("district", "110101")).replace("district~110101", "city~"),
        "expired": issue_token(1, city, now=time.time() - 10 * 86400, max_age_s=60),
        "none": None,
    }[case]
    url = f"/tiles/officers/{Z14[0]}/{Z14[1]}/{Z14[2]}.mvt" + (f"?t={token}" if token else "")
    response = client.get(url)
    assert response.status_code == {"forged": 403, "tampered": 403, "expired": 401, "none": 401}[case]
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
def test_versioned_tile_is_immutable_and_revalidates_with_304(client) -> None:  # type: ignore[no-untyped-def]
    login_as(client, "commander")
    url = fill(template(client, "cameras"), *Z14)
    first = client.get(url)
    assert first.status_code == 200
    assert first["Cache-Control"] == "private, max-age=31536000, immutable"
    etag = first["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    with CaptureQueriesContext(connection) as queries:
        again = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag and not again.content
    assert len(queries) == 0, "a versioned URL revalidates without the database"
    # An unversioned URL must be revalidated each time, and still answers 304 when unchanged.
    plain = client.get(f"/tiles/cameras/{Z14[0]}/{Z14[1]}/{Z14[2]}.mvt")
    assert plain["Cache-Control"] == "private, no-cache"
    assert client.get(f"/tiles/cameras/{Z14[0]}/{Z14[1]}/{Z14[2]}.mvt",
                      HTTP_IF_NONE_MATCH=plain["ETag"]).status_code == 304


@pytest.mark.django_db
def test_live_layers_may_be_reused_for_seconds_only(client, settings) -> None:  # type: ignore[no-untyped-def]
    login_as(client, "commander")
    response = client.get(fill(template(client, "officers"), *Z14))
    assert response["Cache-Control"] == f"private, max-age={settings.ONEMAP_TILE_LIVE_MAX_AGE_S}"


@pytest.mark.django_db
def test_cache_hit_needs_no_query(client) -> None:  # type: ignore[no-untyped-def]
    login_as(client, "commander")
    url = fill(template(client, "cameras,hotspots"), *Z14)
    first = client.get(url)
    with CaptureQueriesContext(connection) as queries:
        second = client.get(url)
    assert len(queries) == 0
    assert second.content == first.content


@pytest.mark.django_db
def test_gzip_only_when_asked(client) -> None:  # type: ignore[no-untyped-def]
    login_as(client, "commander")
    url = f"/tiles/cameras/{Z14[0]}/{Z14[1]}/{Z14[2]}.mvt"
    zipped = client.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    plain = client.get(url)
    refused = client.get(url, HTTP_ACCEPT_ENCODING="gzip;q=0, identity")
    assert zipped["Content-Encoding"] == "gzip" and "Content-Encoding" not in plain
    assert "Content-Encoding" not in refused
    assert gzip.decompress(zipped.content) == plain.content == refused.content
    assert len(zipped.content) < len(plain.content) / 2
    assert "Accept-Encoding" in zipped["Vary"]


@pytest.mark.django_db
def test_empty_tile_is_an_empty_200(client) -> None:  # type: ignore[no-untyped-def]
    login_as(client, "commander")
    response = client.get("/tiles/cameras/14/0/0.mvt", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200 and response.content == b"" and "Content-Encoding" not in response
    assert response["ETag"]


def test_in_process_cache_is_bounded() -> None:
    lru = tile_cache.LruBytes(max_bytes=10_000)
    for i in range(100):
        lru.set(f"k{i}", bytes(1000))
    assert lru.size <= 10_000 and 0 < len(lru) < 10
    assert lru.get("k99") is not None and lru.get("k0") is None
    lru.set("huge", bytes(20_000))  # larger than the whole cache: not kept, nothing evicted for it
    assert lru.get("huge") is None and lru.get("k99") is not None


@pytest.fixture
def redis_url(tmp_path):  # type: ignore[no-untyped-def]
    """A private redis-server on a unix socket, ready when it says so (no sleeps)."""
    import redis

    socket = tmp_path / "redis.sock"
    server = subprocess.Popen(
        ["/usr/bin/redis-server", "--port", "0", "--unixsocket", str(socket), "--save", "", "--appendonly", "no"],
        stdout=subprocess.PIPE, text=True)
    try:
        for line in server.stdout:  # type: ignore[union-attr]
            if "ready to accept connections" in line.lower():
                break
        else:
            pytest.fail("redis-server exited before it was ready")
        assert redis.Redis(unix_socket_path=str(socket)).ping()
        yield f"unix://{socket}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.django_db
def test_redis_shares_the_cache_between_workers(client, settings, redis_url) -> None:  # type: ignore[no-untyped-def]
    import redis

    settings.REDIS_URL = redis_url
    tile_cache.reset()
    login_as(client, "commander")
    url = fill(template(client, "cameras"), *Z14)
    first = client.get(url)
    assert redis.Redis.from_url(redis_url).keys("onemap:tile:*")
    tile_cache.reset()  # another worker: its own empty in-process cache, the same Redis
    with CaptureQueriesContext(connection) as queries:
        second = client.get(url)
    assert len(queries) == 0 and second.content == first.content


@pytest.fixture
def committed(django_db_blocker):  # type: ignore[no-untyped-def]
    """Real commits (no wrapping transaction), as the server sees them; the test restores what it
    changes."""
    with django_db_blocker.unblock():
        yield


def test_a_changed_hotspot_shows_at_the_next_request(client, committed) -> None:  # type: ignore[no-untyped-def]
    login_as(client, "commander")
    hotspot = HotspotPoint.objects.filter(id__in=sql_ids("geo_hotspotpoint", *Z14)).order_by("id").first()
    assert hotspot is not None
    before = (hotspot.status, hotspot.category)
    new_status = "closed" if hotspot.status == "open" else "open"
    new_category = "garbage" if hotspot.category != "garbage" else "illegal_ads"
    z10 = tile_of(*CENTRE, 10)
    url14 = f"/tiles/hotspots/{Z14[0]}/{Z14[1]}/{Z14[2]}.mvt"
    url10 = f"/tiles/hotspots/{z10[0]}/{z10[1]}/{z10[2]}.mvt?category={new_category}"

    def status_in_tile() -> str:
        features = decode(client.get(url14))["hotspots"]["features"]
        return next(f["properties"]["status"] for f in features if f["id"] == hotspot.id)

    def cluster_total() -> int:
        return sum(f["properties"]["count"] for f in decode(client.get(url10))["hotspots"]["features"])

    old_template, old_status, old_total = template(client, "hotspots"), status_in_tile(), cluster_total()
    assert old_status == hotspot.status
    try:
        hotspot.status, hotspot.category = new_status, new_category
        hotspot.save(update_fields=["status", "category", "updated_at"])
        assert status_in_tile() == new_status
        assert cluster_total() == old_total + 1, "the low-zoom clusters follow at once"
        assert template(client, "hotspots") != old_template, "the layer version changed"
    finally:
        HotspotPoint.objects.filter(id=hotspot.id).update(status=before[0], category=before[1])


@pytest.mark.django_db
def test_gdal_reads_a_served_tile(client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    login_as(client, "commander")
    layers = "districts,streets,gridcells,hotspots,cameras"
    response = client.get(f"/tiles/{layers}/{Z14[0]}/{Z14[1]}/{Z14[2]}.mvt")
    expected = counts(decode(response))
    tile_file = tmp_path / str(Z14[0]) / str(Z14[1]) / f"{Z14[2]}.pbf"
    tile_file.parent.mkdir(parents=True)
    tile_file.write_bytes(response.content)
    result = subprocess.run(["/usr/bin/ogrinfo", "-ro", "-so", "-al", str(tile_file)],
                            capture_output=True, text=True, check=True)
    found = dict(re.findall(r"Layer name: (\w+).*?Feature Count: (\d+)", result.stdout, re.S))
    assert {name: int(n) for name, n in found.items()} == expected
    assert set(found) == set(layers.split(","))


async def asgi_get(app, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:  # type: ignore[no-untyped-def]
    path, _, query = url.partition("?")
    scope = {"type": "http", "method": "GET", "path": path, "query_string": query.encode(), "headers": [
        (k.lower().encode(), v.encode()) for k, v in headers.items()]}
    messages: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = messages[0]
    return (start["status"], {k.decode(): v.decode() for k, v in start["headers"]},
            b"".join(m.get("body", b"") for m in messages[1:]))


@pytest.mark.django_db
def test_asgi_fast_path_answers_signed_urls_as_the_view_does(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from django.db import connection as db

    from tiles import asgi as tiles_asgi
    from tiles.asgi import TileFastPath

    login_as(client, "commander")
    url = fill(template(client, "cameras,hotspots"), *Z14)
    expected = client.get(url, HTTP_ACCEPT_ENCODING="gzip")
    tile_cache.reset()
    fallback_calls: list[str] = []

    async def fallback(scope, receive, send):  # type: ignore[no-untyped-def]
        fallback_calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    threaded: list[str] = []
    in_thread = tiles_asgi.serve_in_pool

    def counted(*args):  # type: ignore[no-untyped-def]
        threaded.append("serve_in_pool")
        return in_thread(*args)

    monkeypatch.setattr(tiles_asgi, "serve_in_pool", counted)
    app = TileFastPath(fallback, threads=1)

    async def requests() -> None:
        status, headers, body = await asgi_get(app, url, {"Accept-Encoding": "gzip"})
        assert status == 200 and body == expected.content
        assert headers["etag"] == expected["ETag"] and headers["content-encoding"] == "gzip"
        assert (await asgi_get(app, url, {"If-None-Match": expected["ETag"]}))[0] == 304
        # Uncompressed for a client that does not take gzip, from the same (now cached) tile.
        status, headers, body = await asgi_get(app, url, {})
        assert status == 200 and "content-encoding" not in headers and body == gzip.decompress(expected.content)
        bad_status, bad_headers, bad_body = await asgi_get(app, url.replace("/14/", "/99/"), {})
        assert bad_status == 404 and bad_headers["content-type"] == "application/problem+json"
        assert json.loads(bad_body)["status"] == 404
        # Without a signed token, the request is Django's (session or bearer).
        assert (await asgi_get(app, f"/tiles/cameras/{Z14[0]}/{Z14[1]}/{Z14[2]}.mvt", {}))[0] == 418
        assert fallback_calls == [f"/tiles/cameras/{Z14[0]}/{Z14[1]}/{Z14[2]}.mvt"]
        # The versioned miss ran its statement from the event loop, not in the thread pool.
        assert threaded == []

    try:
        asyncio.run(requests())
    finally:
        assert app.db is not None
        app.db.close()
        app.pool.submit(lambda: db.close()).result()  # the pool thread's own connection
        app.pool.shutdown()


@pytest.mark.django_db
@pytest.mark.parametrize(("layers", "query", "z"), [
    ("cameras,hotspots", "", 14),  # raw points, two layers
    ("cameras", "source=self_built,police_shared&status=online", 14),  # filter value lists
    ("hotspots,cameras", "", 9),  # clusters
    ("gridcells,districts", "", 11),  # simplified polygons
])
def test_loop_and_pool_misses_answer_as_the_view_does(client, layers, query, z) -> None:  # type: ignore[no-untyped-def]
    """tiles.loopdb binds parameters in text form and lets PostgreSQL type them: the same tile,
    byte for byte, as the Django view and the thread pool, for each kind of layer statement."""
    import asyncio

    from django.db import connection as db

    from tiles.asgi import TileFastPath

    login_as(client, "donghuamen")  # a street dispatcher: scoped layers add jurisdiction parameters
    url = fill(template(client, layers, query), *tile_of(*CENTRE, z))
    expected = client.get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert expected.status_code == 200

    async def unexpected(scope, receive, send):  # type: ignore[no-untyped-def]
        raise AssertionError(scope["path"])

    for loop_connections in (1, 0):
        tile_cache.reset()
        app = TileFastPath(unexpected, threads=1, loop_connections=loop_connections)
        try:
            status, headers, body = asyncio.run(asgi_get(app, url, {"Accept-Encoding": "gzip"}))
            assert (status, headers["etag"], body) == (200, expected["ETag"], expected.content)
            if app.db is not None:  # run on the loop: one connection, its statement prepared once
                asyncio.run(asgi_get(app, url, {}))
                assert len(app.db.connections) == 1 and len(app.db.connections[0].prepared) == 1
        finally:
            if app.db is not None:
                app.db.close()
            app.pool.submit(lambda: db.close()).result()
            app.pool.shutdown()


@pytest.mark.django_db
def test_fast_path_shares_misses_through_redis_on_the_loop(client, settings, redis_url, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With REDIS_URL (as `make serve` runs), a versioned miss still runs on the event loop: it asks
    Redis with the asyncio client, renders over tiles.loopdb and stores the tile in Redis, where
    another worker (its own fresh in-process cache) finds it without a statement."""
    import asyncio

    import redis

    from tiles import asgi as tiles_asgi
    from tiles.asgi import TileFastPath

    settings.REDIS_URL = redis_url
    login_as(client, "commander")
    url = fill(template(client, "cameras"), *Z14)
    tile_cache.reset()
    expected = client.get(url, HTTP_ACCEPT_ENCODING="gzip")  # the Django view: stored in Redis
    shared = redis.Redis.from_url(redis_url)
    shared.flushall()  # from here on, only the fast paths fill it
    monkeypatch.setattr(tiles_asgi, "serve_in_pool", lambda *args: pytest.fail("a miss went to the thread pool"))

    async def unexpected(scope, receive, send):  # type: ignore[no-untyped-def]
        raise AssertionError(scope["path"])

    first, second = TileFastPath(unexpected, threads=1), TileFastPath(unexpected, threads=1)
    try:
        tile_cache.reset()  # worker 1
        status, headers, body = asyncio.run(asgi_get(first, url, {"Accept-Encoding": "gzip"}))
        assert (status, headers["etag"], body) == (200, expected["ETag"], expected.content)
        assert first.db is not None and first.db.connections[0].batches == 1  # rendered on the loop
        assert len(shared.keys("onemap:tile:*")) == 1
        tile_cache.reset()  # worker 2
        status, headers, body = asyncio.run(asgi_get(second, url, {"Accept-Encoding": "gzip"}))
        assert (status, body) == (200, expected.content)
        assert second.db is not None and second.db.connections == []  # no statement: Redis had it
    finally:
        for app in (first, second):
            assert app.db is not None
            app.db.close()
            app.pool.shutdown()
