"""OneMap settings. Everything that differs between machines comes from the environment."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from config import secret_key
from config.env import BASE_DIR, database_from_url, env, env_bool, local_database_url
from config.logs import logging_config

DEBUG = env_bool("DEBUG", False)
# ONEMAP_SECRET_KEY, else the random key `make setup` wrote to .var/secret_key; no default.
SECRET_KEY = secret_key.load()
ALLOWED_HOSTS = [h.strip() for h in env("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in env("CSRF_TRUSTED_ORIGINS", "").split(",") if o]
# Served over HTTPS (ONEMAP_HTTPS=1): the session and CSRF cookies are then sent over HTTPS only.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("HTTPS", False)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "axes",
    "django.contrib.postgres",
    "channels",
    "accounts",
    "geo",
    "frontend",
    "realtime",
    "tiles",
    "command",
    # django-ninja: the /api/docs page is served from its own static files (no CDN)
    "ninja",
    # procrastinate: the PostgreSQL-backed job runner (its tables come as migrations)
    "procrastinate.contrib.django",
]

MIDDLEWARE = [
    "config.headers.SecurityHeadersMiddleware",  # CSP and friends on every answer (config/headers.py)
    # Next to outermost: an error on an API path leaves as a problem, whichever layer answered it
    # (the security headers, outermost, are added to it too).
    "config.problems.ApiProblemMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # 503 + Retry-After while PostgreSQL is away, instead of a 500 after the pool's timeout.
    "config.dbhealth.DatabaseAvailabilityMiddleware",
    # WhiteNoise with ASGI-streamable file responses (frontend/staticfiles.py says why).
    "frontend.staticfiles.AsyncWhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language the user chose, else zh-hans; never Accept-Language (frontend/middleware.py).
    "frontend.middleware.ChosenLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.BearerTokenMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.observe.RouteLabelMiddleware",  # metrics label requests by route template (config/observe.py)
    "accounts.login_limit.LoginBusyMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "config.urls"
# API paths get a problem+json body on a CSRF failure, pages Django's own (config/problems.py).
CSRF_FAILURE_VIEW = "config.problems.csrf_failure"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL") or local_database_url())}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
# capacity: messages a channel holds before sends to it are dropped; each server process has one
# realtime hub channel that takes every map event, so it gets room for bursts.
if REDIS_URL:
    # redis-py 8 times a socket read out after 5 s by default, exactly channels-redis's BZPOPMIN
    # wait: a longer read timeout keeps idle receivers from failing every few seconds.
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "socket_connect_timeout": 5}],
            "capacity": 2000}}
    }
else:
    # Channels' in-memory layer without its deep copy per send (realtime/layers.py).
    CHANNEL_LAYERS = {"default": {"BACKEND": "realtime.layers.SharedInMemoryChannelLayer", "CONFIG": {"capacity": 2000}}}

# Realtime (realtime/conf.py documents each): a unit is stale after this many seconds silent.
ONEMAP_STALE_AFTER_S = int(env("STALE_AFTER_S", "120"))
ONEMAP_FIX_RETENTION_DAYS = int(env("FIX_RETENTION_DAYS", "30"))

# API tokens (manage.py token) expire after this many days unless issued with --days.
ONEMAP_API_TOKEN_DAYS = int(env("API_TOKEN_DAYS", "90"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# Logins (accounts/login_limit.py): django-axes locks a username, and separately an address, after
# ONEMAP_LOGIN_FAILURES failures for ONEMAP_LOGIN_COOLOFF_MIN minutes; password hashes run at most
# ONEMAP_LOGIN_HASH_SLOTS at a time per process, with ONEMAP_LOGIN_HASH_QUEUE logins waiting.
AUTHENTICATION_BACKENDS = ["accounts.login_limit.RateLimitBackend", "accounts.login_limit.GatedModelBackend"]
AXES_FAILURE_LIMIT = int(env("LOGIN_FAILURES", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(env("LOGIN_COOLOFF_MIN", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.login_limit.locked_out"
# Quiet start-up: its "AXES: BEGIN" banner on stderr broke the one-line messages of the CLI tools.
AXES_VERBOSE = False
ONEMAP_LOGIN_HASH_SLOTS = int(env("LOGIN_HASH_SLOTS", "1"))
ONEMAP_LOGIN_HASH_QUEUE = int(env("LOGIN_HASH_QUEUE", "8"))
ONEMAP_LOGIN_HASH_WAIT_S = float(env("LOGIN_HASH_WAIT_S", "10"))
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# Uploaded task photos (command/): outside the code, never served without a permission check.
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / ".var" / "media")))
STATIC_ROOT = BASE_DIR / ".var" / "static"
# MapLibre GL JS comes from npm (node_modules) and is served by us: nothing loads from a CDN.
STATICFILES_DIRS = [
    ("vendor/maplibre-gl", BASE_DIR / "node_modules" / "maplibre-gl" / "dist"),
    # OpenLayers for the admin's map widget: the whole package, because ol.css sits outside dist/.
    ("vendor/ol", BASE_DIR / "node_modules" / "ol"),
]
WHITENOISE_USE_FINDERS = True

# Geometry storage: everything in CGCS2000 geographic (EPSG:4490); tiles use a 3857 copy.
ONEMAP_SRID = 4490
ONEMAP_WEB_SRID = 3857
# Vector tiles (tiles/README.md): the tile cache (off for the cold benchmark), its in-process size
# (shared through Redis when REDIS_URL is set), how long a signed tile URL (?t=) stays valid, and
# how long a tile of a live layer (officers, vehicles) may be reused.
ONEMAP_TILE_CACHE = env_bool("TILE_CACHE", True)
ONEMAP_TILE_CACHE_MB = int(env("TILE_CACHE_MB", "256"))
ONEMAP_TILE_TOKEN_MAX_AGE_S = int(env("TILE_TOKEN_MAX_AGE_S", str(12 * 3600)))
# A tile token's user is looked up again (active? same jurisdiction?) after this many seconds.
ONEMAP_TILE_USER_CHECK_S = int(env("TILE_USER_CHECK_S", "30"))
# An API token's user is looked up again after this many seconds (accounts/middleware.py); a
# revocation or deactivation in the same process is seen at once.
ONEMAP_API_TOKEN_CHECK_S = int(env("API_TOKEN_CHECK_S", "5"))
ONEMAP_TILE_LIVE_MAX_AGE_S = int(env("TILE_LIVE_MAX_AGE_S", "5"))
# The OGC API caps a page at this many features.
OGC_MAX_LIMIT = int(env("OGC_MAX_LIMIT", "10000"))
# Pages of more features than this are heavy (geo/ogc/limits.py): streamed in chunks, and at most
# so many at once per user (then 429) and per process (then 503), with this Retry-After. The
# process limit stays well under DB_POOL_MAX so light requests always find a connection.
OGC_HEAVY_LIMIT = int(env("OGC_HEAVY_LIMIT", "1000"))
OGC_HEAVY_PER_USER = int(env("OGC_HEAVY_PER_USER", "2"))
OGC_HEAVY_PER_PROCESS = int(env("OGC_HEAVY_PER_PROCESS", "4"))
OGC_HEAVY_RETRY_AFTER_S = int(env("OGC_HEAVY_RETRY_AFTER_S", "2"))
# A `next` link asks for twice the page it follows, up to this (geo/ogc/views.py next_limit).
OGC_NEXT_LIMIT_MAX = int(env("OGC_NEXT_LIMIT_MAX", "1000"))

# Debian 12's GDAL is 3.6; its missing file/network blocking matters only when untrusted spatial
# reference strings reach GDAL, and OneMap only passes SRIDs from its own whitelists.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

# Logs: text by default, ONEMAP_LOG_FORMAT=json for one JSON object a line (config/logs.py).
LOGGING = logging_config(env("LOG_FORMAT", "text"), env("LOG_LEVEL", "INFO"))
# /metrics answers staff users; loopback clients without a login only when this is on (never
# behind a reverse proxy on the same machine: every client would then look local).
ONEMAP_METRICS_LOOPBACK = env_bool("METRICS_LOOPBACK", False)
