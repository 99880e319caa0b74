"""Whether PostgreSQL is there, so that clients get a quick 503 while it is away.

Without this, a request during an outage waited for psycopg's pool (10 s, queued behind the ingest
threads: up to 29 s) and then got a 500; and after the database came back the pool reconnected
one connection at a time with a doubling back-off, so workers kept stalling for half a minute.

Now the first database error of a kind that means "not reachable" (OperationalError,
InterfaceError) starts a probe thread: one fresh connection and `SELECT 1`. If that fails the
database is *down*: the pool is replaced (its waiting clients fail at once instead of waiting for
their timeout) and requests that need the database answer 503 with Retry-After without touching
it. The thread probes every PROBE_EVERY_S; when the database answers again the pool is replaced
once more (a fresh one fills at once, instead of the old one's back-off) and requests go through.
A probe that succeeds at once (one broken connection, the database fine) only checks the pool's
idle connections."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

import psycopg
from django.core.signals import got_request_exception
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

from config.problems import Problem, problem_response

log = logging.getLogger(__name__)

PROBE_EVERY_S = 0.5
PROBE_CONNECT_TIMEOUT_S = 2
RETRY_AFTER_S = 2
# Errors that say the database is not reachable (a constraint violation or bad data says nothing).
UNREACHABLE = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down_since: float | None = None  # monotonic time of the first failed probe
        self.probing = False
        self.generation = 0  # bumped each time the pool is replaced: older connections are dropped


_state = _State()


def available() -> bool:
    return _state.down_since is None


def generation() -> int:
    return _state.generation


def unavailable() -> Problem:
    return Problem(503, "the database is unavailable; retry later", title="Service Unavailable",
                   headers={"Retry-After": str(RETRY_AFTER_S)}, reason="database_unavailable")


def check() -> None:
    """Raise the 503 problem at once while the database is known to be down."""
    if _state.down_since is not None:
        raise unavailable()


def note_failure(error: BaseException) -> bool:
    """Called with an exception a database operation raised: True when it means the database may be
    unreachable (the caller then answers 503); a probe finds out whether it is."""
    if not isinstance(error, UNREACHABLE):
        return False
    with _state.lock:
        if _state.probing:
            return True
        _state.probing = True
    threading.Thread(target=_probe_until_back, name="db-health", daemon=True).start()
    return True


def probe() -> str | None:
    """None when a fresh connection answers `SELECT 1`, else why not (for /readyz too)."""
    params: dict[str, Any] = connections[DEFAULT_DB_ALIAS].get_connection_params()
    params["connect_timeout"] = PROBE_CONNECT_TIMEOUT_S
    params["autocommit"] = True
    try:
        with psycopg.connect(**params) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        return f"{type(error).__name__}: {str(error).strip()[:200]}"
    return None


def _probe_until_back() -> None:
    try:
        while True:
            why = probe()
            if why is None:
                break
            with _state.lock:
                newly_down = _state.down_since is None
                if newly_down:
                    _state.down_since = time.monotonic()
            if newly_down:
                log.warning("database unavailable (%s): answering 503 until it is back", why)
                _replace_pool()  # its waiting clients fail now, not after the pool's timeout
            time.sleep(PROBE_EVERY_S)  # the probe's period, not a synchronisation
        was_down = _state.down_since is not None
        if was_down:
            _replace_pool()
            assert _state.down_since is not None
            log.warning("database back after %.1f s", time.monotonic() - _state.down_since)
        else:
            _check_pool()
        with _state.lock:
            _state.down_since = None
    finally:
        with _state.lock:
            _state.probing = False


def _replace_pool() -> None:
    """A new pool in place of the old one: Django makes it on the next use."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    with _state.lock:
        _state.generation += 1
    pools: dict[str, Any] = DatabaseWrapper._connection_pools  # type: ignore[attr-defined]
    old = pools.pop(DEFAULT_DB_ALIAS, None)
    if old is not None:
        try:
            old.close(timeout=1)
        except Exception:  # closing a pool of dead connections must not stop the probe
            log.exception("closing the old connection pool failed")


def _check_pool() -> None:
    from django.db.backends.postgresql.base import DatabaseWrapper

    pools: dict[str, Any] = DatabaseWrapper._connection_pools  # type: ignore[attr-defined]
    pool = pools.get(DEFAULT_DB_ALIAS)
    if pool is not None:
        try:
            pool.check()
        except Exception:
            log.exception("checking the connection pool failed")


class DatabaseAvailabilityMiddleware:
    """503 at once while the database is down (Retry-After), and a view's database error that
    means "unreachable" becomes that 503 too (and starts the probe), not a 500."""

    EXEMPT = ("/healthz", "/readyz", "/static/")

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _state.down_since is not None and not request.path.startswith(self.EXEMPT):
            return problem_response(unavailable())
        response: HttpResponse = self.get_response(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if note_failure(exception):
            return problem_response(unavailable())
        return None


@receiver(got_request_exception)
def _on_request_exception(sender: Any, **kwargs: Any) -> None:
    """A database error in a middleware (a token look-up) is not seen by process_exception."""
    error = sys.exc_info()[1]
    if error is not None:
        note_failure(error)
