"""OneMap settings. Everything that differs between machines comes from the environment."""

from __future__ import annotations

import os

from config.env import BASE_DIR, database_from_url, env, env_bool, local_database_url

DEBUG = env_bool("DEBUG", False)
# The demo key only serves the local demo; production sets ONEMAP_SECRET_KEY.
SECRET_KEY = env("SECRET_KEY", "onemap-local-demo-key-not-for-production-0123456789abcdef")
ALLOWED_HOSTS = [h.strip() for h in env("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in env("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "django.contrib.postgres",
    "channels",
    "accounts",
    "geo",
    "frontend",
    "realtime",
    "tiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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
]

ROOT_URLCONF = "config.urls"
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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
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
ONEMAP_TILE_LIVE_MAX_AGE_S = int(env("TILE_LIVE_MAX_AGE_S", "5"))
# The OGC API caps a page at this many features.
OGC_MAX_LIMIT = int(env("OGC_MAX_LIMIT", "10000"))

# Debian 12's GDAL is 3.6; its missing file/network blocking matters only when untrusted spatial
# reference strings reach GDAL, and OneMap only passes SRIDs from its own whitelists.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
