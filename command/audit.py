"""全过程留痕: the hash-chained audit log.

An entry is written in the transaction of the change it records, with `content_hash`: SHA-256
over its content (time, actor, action, object, before, after). Committed entries are then sealed
into the chain in batches by `command_audit_seal` (migration 0005): under an advisory lock it
takes the last chained entry and gives each new entry, in id order, its `seq` (the next number:
the chain has no gaps), `prev_hash` (the hash before it) and `hash` = SHA-256(prev_hash +
content_hash). An altered entry no longer matches its hash; a removed or inserted entry breaks
the link of the one after it.

Who seals: the process that wrote an entry, at once after the commit (a thread of its own,
`Sealer`, woken by the commit); the job runner every minute (a process that died in between);
and `verify` before it walks. Why not the writing transaction itself: the chain needs one order,
so sealing is serialised, and a transaction that seals holds the lock until its commit. Done by
the application in the action (as first built) the lock was held across the action's statements
and GIL waits: 355 ms mean wait under 50 dispatchers; done by a commit-time trigger, 2-13 ms, as
every commit queued behind a holder the OS had preempted (bench/dispatch.py). A sealer holds it
for one batch of entries, and no action ever waits for it.

A trigger refuses UPDATE, DELETE and TRUNCATE (migration 0002), except sealing an entry that is
not sealed yet (its content unchanged)."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from command.models import AuditEntry
from config import prepared

log = logging.getLogger(__name__)

GENESIS = "0" * 64
# pg_advisory_xact_lock key of the sealer (migration 0005): "audit" in ASCII.
AUDIT_LOCK = 0x6175646974
INSERT_SQL = ("INSERT INTO command_auditentry (at, actor, action, object_type, object_id, before, after, content_hash)"
              " VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s)")


def canonical_json(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True, ensure_ascii=False)


def canonical(value: Any) -> Any:
    """JSON values as PostgreSQL's jsonb will hand them back (so the hash can be recomputed)."""
    return json.loads(canonical_json(value))


def content_hash(at: datetime, actor: str, action: str, object_type: str, object_id: str, before: Any,
                 after: Any) -> str:
    # Microsecond precision is what PostgreSQL keeps: hash exactly what is stored.
    body = json.dumps([at.astimezone(UTC).isoformat(timespec="microseconds"), actor, action, object_type, object_id,
                       before, after], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def link_hash(prev_hash: str, content: str) -> str:
    """What command_audit_seal computes: SHA-256 over the previous hash and the content hash."""
    return hashlib.sha256((prev_hash + content).encode()).hexdigest()


def append(actor: str, action: str, object_type: str, object_id: str, before: Any, after: Any,
           at: datetime) -> None:
    """Append one entry. Must run inside the transaction of the change it records; it is sealed
    into the chain after that transaction commits."""
    assert connection.in_atomic_block, "an audit entry is written with the change it records"
    before, after = canonical(before), canonical(after)
    digest = content_hash(at, actor, action, object_type, str(object_id), before, after)
    prepared.fetch(INSERT_SQL, [at, actor, action, object_type, str(object_id),
                                None if before is None else json.dumps(before, ensure_ascii=False),
                                None if after is None else json.dumps(after, ensure_ascii=False), digest])
    transaction.on_commit(SEALER.wake)


def seal(wait: bool = True) -> int:
    """Chain every committed entry (and this transaction's own) not chained yet; returns how many,
    or -1 when `wait` is false and another sealer holds the lock. A test inside a transaction that
    is rolled back calls it to seal its entries as the commit would have."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT command_audit_seal(%s)", [wait])
        return int(cursor.fetchone()[0])


class Sealer:
    """This process's sealing thread: woken by each commit that appended, it seals what is there
    (everything committed since its last batch) on a connection of its own."""

    def __init__(self) -> None:
        self._wanted = threading.Event()
        self._start = threading.Lock()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._wanted.set()
        if self._thread is None or not self._thread.is_alive():
            with self._start:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="audit-sealer", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        from django.db import connections

        while True:
            self._wanted.wait()
            self._wanted.clear()
            try:
                seal()
            except Exception as error:  # the database is away: the next commit or the job runner seals
                log.warning("audit: sealing failed: %r", error)
            finally:
                connections.close_all()  # this thread's connection back to the pool between batches


SEALER = Sealer()


@dataclass(frozen=True)
class Finding:
    entry_id: int
    problem: str  # "altered" | "broken_link" (an entry removed or inserted before it)
    detail: str


def verify(batch: int = 5000) -> Iterator[Finding | int]:
    """Seal what is committed, then walk the chain in its order. Yields findings, and the count of
    entries checked so far after each batch (for progress)."""
    seal()
    previous, last_seq, checked = GENESIS, 0, 0
    while True:
        rows = list(AuditEntry.objects.filter(seq__gt=last_seq).order_by("seq")[:batch])
        if not rows:
            break
        for e in rows:
            if e.prev_hash != previous or e.seq != last_seq + 1:
                yield Finding(e.id, "broken_link",
                              "its previous-hash does not match the entry before it: an entry was removed or inserted")
            digest = content_hash(e.at, e.actor, e.action, e.object_type, e.object_id, e.before, e.after)
            if link_hash(e.prev_hash or "", digest) != e.hash:
                yield Finding(e.id, "altered", "its content no longer matches its hash")
            previous, last_seq = e.hash or "", e.seq or 0
        checked += len(rows)
        yield checked
