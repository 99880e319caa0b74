"""Settings from the environment: one prefix (ONEMAP_), plus the conventional DATABASE_URL,
REDIS_URL and PORT. `.env.example` documents every variable."""

from __future__ import annotations

import os
from pathlib import Path
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


def database_from_url(url: str) -> dict[str, object]:
    """postgresql://user:password@host:port/name?host=/socket/dir&port=N -> Django DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "postgis"}:
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, not {parts.scheme}://")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    host = query.pop("host", None) or unquote(parts.hostname or "")
    port = query.pop("port", None) or (str(parts.port) if parts.port else "")
    return {
        "ENGINE": "django.contrib.gis.db.backends.postgis",
        "NAME": unquote(parts.path.lstrip("/")) or "onemap",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": port,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": query,
        "TEST": {"NAME": os.environ.get("ONEMAP_TEST_DB", "test_onemap")},
    }
