"""Realtime limits and thresholds. Each can be overridden in settings (ONEMAP_<NAME>); the
defaults are the documented behaviour (realtime/README.md)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # A unit whose latest fix is older than this is sent with stale: true.
    "STALE_AFTER_S": 120,
    # Fixes older than this are rejected (too_old): the history keeps this window.
    "FIX_RETENTION_DAYS": 30,
    # Device clocks drift a little; more than this ahead is rejected (time_in_future).
    "FIX_MAX_FUTURE_S": 300,
    # Fixes outside this lon/lat box are rejected (outside_service_area): Beijing's extent
    # (115.42-117.51 E, 39.44-41.06 N) plus about 50 km for joint work in neighbouring Hebei.
    "SERVICE_AREA": (114.8, 39.0, 118.1, 41.5),
    # One POST /api/positions carries at most this many fixes (413 beyond) and this many bytes.
    "MAX_BATCH_FIXES": 5000,
    "MAX_BATCH_BYTES": 2 * 1024 * 1024,  # below Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    # Screens receive at most this many frames a second; updates in between are coalesced.
    "MAX_FRAMES_PER_S": 4,
    # Frames kept per stream for resume; a client further behind takes a new snapshot.
    "RESUME_FRAMES": 600,
    # A screen whose socket took no frame for this long while frames waited is closed (4408);
    # the server's WebSocket keepalive (config/http.py) is set to act only well after this.
    "SLOW_SCREEN_S": 10,
    # A stream whose screen went away is kept this long for a resume, then dropped.
    "RESUME_GRACE_S": 120,
    # Device-token look-ups are cached this long; a revoked token stops working within it.
    "TOKEN_CACHE_S": 30,
}


def get(name: str) -> Any:
    return getattr(settings, "ONEMAP_" + name, DEFAULTS[name])
