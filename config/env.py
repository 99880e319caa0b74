"""Settings from the environment: one prefix (ONEMAP_), plus the conventional DATABASE_URL,
REDIS_URL and PORT. `.env.example` documents every variable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import parse_qs, unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
PREFIX = "ONEMAP_"


def env(name: str, default: str = "") -> str:
    return os.environ.get(PREFIX + name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(PREFIX + name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def local_database_url() -> str:
    """The project-local cluster that `make setup` runs under .var/ (socket + own port)."""
    port = os.environ.get("ONEMAP_PG_PORT", "54329")
    return f"postgresql://onemap@/onemap?host={BASE_DIR / '.var' / 'run'}&port={port}"


class DatabaseSettings(TypedDict):
    """The Django DATABASES entry that database_from_url builds."""

    ENGINE: str
    NAME: str
    USER: str
    PASSWORD: str
    HOST: str
    PORT: str
    CONN_MAX_AGE: int
    CONN_HEALTH_CHECKS: bool
    OPTIONS: dict[str, Any]  # backend options: the URL's query strings, plus psycopg's pool settings
    TEST: dict[str, str]


# Generic plans for prepared statements: only the statements config.prepared runs are prepared
# (the tile statement and the dispatch path's), each written so one plan fits every value (its
# constants are literals, so a partial index's predicate is provable). Left to choose, PostgreSQL
# planned several of them afresh on every run (a place snap: 0.5 ms of planning for 0.15 ms of
# work).
SESSION_OPTIONS = "-c max_parallel_workers_per_gather=0 -c plan_cache_mode=force_generic_plan"


def database_from_url(url: str) -> DatabaseSettings:
    """postgresql://user:password@host:port/name?host=/socket/dir&port=N -> Django DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "postgis"}:
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, not {parts.scheme}://")
    params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    host = params.pop("host", None) or unquote(parts.hostname or "")
    port = params.pop("port", None) or (str(parts.port) if parts.port else "")
    query: dict[str, Any] = dict(params)
    # No parallel query: OneMap runs many small statements with a request in flight on every core,
    # so splitting one across workers only adds their start-up; and a parallel plan made a tile's
    # feature order (its bytes) depend on the workers' timing. A URL's own options come after.
    query["options"] = " ".join(filter(None, [SESSION_OPTIONS, query.get("options")]))
    pooled = env_bool("DB_POOL", True)
    if pooled:
        # Under ASGI each request runs its sync code in a fresh thread and Django's connections are
        # per thread: without a pool every request opened a new PostgreSQL connection (~40 ms).
        # psycopg's pool hands a thread an open connection and takes it back at the request's end.
        query["pool"] = {"min_size": 2, "max_size": int(env("DB_POOL_MAX", "16")), "timeout": 10}
    return {
        "ENGINE": "django.contrib.gis.db.backends.postgis",
        "NAME": unquote(parts.path.lstrip("/")) or "onemap",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": port,
        "CONN_MAX_AGE": 0 if pooled else 60,  # Django refuses persistent connections with a pool
        "CONN_HEALTH_CHECKS": not pooled,
        "OPTIONS": query,
        "TEST": {"NAME": os.environ.get("ONEMAP_TEST_DB", "test_onemap")},
    }
