"""How many heavy OGC requests (large pages) may run at once: per user and per process.

A large page holds a database connection from the pool for as long as it streams (seconds for a
slow client), and the pool is shared with every other request of the process: 64 concurrent
10,000-feature pages took all 16 connections, so the pool timed out (500s) and a 1-row request
waited 9.8 s. A heavy request therefore takes a slot before any SQL runs; with no slot free it is
answered at once with 429 (this user already has their share) or 503 (the process is busy), with
Retry-After, never queued and never a 500. Light requests (small pages, metadata, single features)
never take a slot, so they stay fast whatever the heavy ones do.

A slot is held until the response's body is finished or abandoned: released by the body's own end,
by the response's close(), and, should neither run (a client gone before the first byte), when the
slot object is collected. Release is idempotent.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from django.conf import settings

from config.problems import Problem


def heavy_limit() -> int:
    """Pages above this many features are heavy: streamed, and counted against the limits."""
    return int(settings.OGC_HEAVY_LIMIT)


class Slots:
    """Counters of heavy requests in flight, per user and in all, shared by the process's threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_user: Counter[Any] = Counter()
        self.total = 0

    def take(self, user_key: Any) -> Slot:
        per_user, per_process = int(settings.OGC_HEAVY_PER_USER), int(settings.OGC_HEAVY_PER_PROCESS)
        retry = {"Retry-After": str(settings.OGC_HEAVY_RETRY_AFTER_S)}
        with self.lock:
            if self.by_user[user_key] >= per_user:
                raise Problem(429, f"You already have {per_user} large page(s) in progress: wait for one to "
                                   "finish, or ask for smaller pages (limit).", title="Too Many Requests",
                              headers=retry)
            if self.total >= per_process:
                raise Problem(503, f"This server is already sending {per_process} large pages: retry shortly, "
                                   "or ask for smaller pages (limit).", title="Service Unavailable",
                              headers=retry)
            self.by_user[user_key] += 1
            self.total += 1
        return Slot(self, user_key)

    def give_back(self, user_key: Any) -> None:
        with self.lock:
            self.total -= 1
            self.by_user[user_key] -= 1
            if self.by_user[user_key] <= 0:
                del self.by_user[user_key]

    def in_use(self) -> int:
        with self.lock:
            return self.total


class Slot:
    def __init__(self, slots: Slots, user_key: Any) -> None:
        self.slots = slots
        self.user_key = user_key
        self.held = True
        self.lock = threading.Lock()

    def release(self) -> None:
        with self.lock:
            if not self.held:
                return
            self.held = False
        self.slots.give_back(self.user_key)

    def __del__(self) -> None:
        # The last resort: a body never started (and so never finished) still frees its slot.
        if getattr(self, "held", False):
            self.release()


HEAVY = Slots()
