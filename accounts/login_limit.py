"""Logins that cannot be guessed at speed nor starve the server (issue 14).

- Rate limit per account and per address: django-axes (its backend first in
  AUTHENTICATION_BACKENDS; ONEMAP_LOGIN_FAILURES failures lock the username, and separately the
  address, for ONEMAP_LOGIN_COOLOFF_MIN minutes; answered 429 with Retry-After).
- Password hashing keeps its cost (PBKDF2, most of a second of CPU), so it runs behind a gate:
  at most ONEMAP_LOGIN_HASH_SLOTS hashes at a time per worker process, at most
  ONEMAP_LOGIN_HASH_QUEUE logins waiting (each for up to ONEMAP_LOGIN_HASH_WAIT_S); any more are
  answered 503 with Retry-After before any hashing. 32 concurrent bad logins slowed tiles to
  8.8 s when each ran its own hash on the two cores; now they use at most the slots' cores."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest, HttpResponse

from config.problems import Problem, problem_response


class LoginBusy(Exception):
    """Too many logins at once in this process: the client should retry shortly."""


class HashingGate:
    """A bounded semaphore with a bounded queue: `slots` holders at once, `queue` waiting (for at
    most `wait_s`), LoginBusy for the rest, so waiting threads cannot pile up either."""

    def __init__(self, slots: int, queue: int, wait_s: float) -> None:
        self.slots = threading.BoundedSemaphore(max(1, slots))
        self.queue, self.wait_s = queue, wait_s
        self.lock = threading.Lock()
        self.waiting = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self.slots.acquire(blocking=False):
            with self.lock:
                if self.waiting >= self.queue:
                    raise LoginBusy
                self.waiting += 1
            try:
                acquired = self.slots.acquire(timeout=self.wait_s)
            finally:
                with self.lock:
                    self.waiting -= 1
            if not acquired:
                raise LoginBusy
        try:
            yield
        finally:
            self.slots.release()


_gate: HashingGate | None = None
_gate_lock = threading.Lock()


def gate() -> HashingGate:
    global _gate
    with _gate_lock:
        if _gate is None:
            _gate = HashingGate(settings.ONEMAP_LOGIN_HASH_SLOTS, settings.ONEMAP_LOGIN_HASH_QUEUE,
                                settings.ONEMAP_LOGIN_HASH_WAIT_S)
        return _gate


def reset_gate() -> None:
    """Forget the gate, so the next login builds one from the current settings (tests)."""
    global _gate
    with _gate_lock:
        _gate = None


class RateLimitBackend(AxesStandaloneBackend):
    """django-axes' lockout check. Without a request (Django's test client, a shell) there is no
    address to count, and authenticate() is not reachable from outside: nothing to limit."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None,  # type: ignore[override]
                     password: str | None = None, **kwargs: Any) -> None:
        if request is not None:
            super().authenticate(request, username, password, **kwargs)


class GatedModelBackend(ModelBackend):
    """Django's ModelBackend (which hashes even for an unknown username, against timing probes)
    with the hashing behind the gate."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None,  # type: ignore[override]
                     password: str | None = None, **kwargs: Any) -> Any:
        with gate().slot():
            return super().authenticate(request, username=username, password=password, **kwargs)


def retry_problem(status: int, detail: str, retry_after_s: int) -> HttpResponse:
    return problem_response(Problem(status, detail, title="Too Many Requests" if status == 429 else "Service Unavailable",
                                    headers={"Retry-After": str(retry_after_s)}))


def locked_out(request: HttpRequest, response: HttpResponse | None = None, credentials: Any = None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 with Retry-After for the cool-off."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    return retry_problem(429, "Too many failed logins for this account or address; try again later.", seconds)


class LoginBusyMiddleware:
    """Turns LoginBusy (raised inside authenticate, from the login form or the admin's) into 503."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, LoginBusy):
            return retry_problem(503, "Too many logins at once; try again in a few seconds.", 2)
        return None
