"""全过程留痕: the hash-chained audit log.

An entry is written in the transaction of the change it records, with `content_hash`: SHA-256
over its content (time, actor, action, object, before, after). It is chained when that
transaction commits, by a deferred constraint trigger (migration 0003): under a
transaction-scoped advisory lock it takes the last chained entry, and sets the new entry's `seq`
(the next number: the chain has no gaps), `prev_hash` (that entry's hash) and `hash` =
SHA-256(prev_hash + content_hash). So an altered entry no longer matches its hash, and a removed
or inserted entry breaks the link of the one after it.

Why at commit, in the database: the chain needs one order, so appends are serialised, and the
lock is held until the commit. Taken by the application (as it was), it was held across the
application's own statements and its waits for the GIL, and 50 dispatchers queued behind it
(bench/dispatch.py: 355 ms mean wait). Taken in the commit, it is held for the server's few
microseconds of chaining and the WAL flush.

A trigger refuses UPDATE, DELETE and TRUNCATE (migration 0002); the chaining update is the one
change it lets through (migration 0003)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection

from command.models import AuditEntry

GENESIS = "0" * 64
# pg_advisory_xact_lock key of the chaining trigger: "audit" in ASCII.
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
    """What the chaining trigger computes: SHA-256 over the previous hash and the content hash."""
    return hashlib.sha256((prev_hash + content).encode()).hexdigest()


def append(actor: str, action: str, object_type: str, object_id: str, before: Any, after: Any,
           at: datetime) -> None:
    """Append one entry. Must run inside the transaction of the change it records; it is chained
    when that transaction commits."""
    assert connection.in_atomic_block, "an audit entry is written with the change it records"
    before, after = canonical(before), canonical(after)
    digest = content_hash(at, actor, action, object_type, str(object_id), before, after)
    with connection.cursor() as cursor:
        cursor.execute(INSERT_SQL, [at, actor, action, object_type, str(object_id),
                                    None if before is None else json.dumps(before, ensure_ascii=False),
                                    None if after is None else json.dumps(after, ensure_ascii=False), digest])


def chain_now() -> None:
    """Chain this transaction's entries now, as its commit would (for a caller that inspects them
    before committing, such as a test inside a transaction that is rolled back)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS command_audit_chain IMMEDIATE")


@dataclass(frozen=True)
class Finding:
    entry_id: int
    problem: str  # "altered" | "broken_link" (an entry removed or inserted before it) | "unchained"
    detail: str


def verify(batch: int = 5000) -> Iterator[Finding | int]:
    """Walk the chain in its order. Yields findings, and the count of entries checked so far after
    each batch (for progress)."""
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
    # Committed entries are chained by their commit; one that is not was written with the trigger
    # disabled. (This transaction's own entries are chained by chain_now() or the commit.)
    for entry_id in AuditEntry.objects.filter(seq__isnull=True).order_by("id").values_list("id", flat=True):
        yield Finding(entry_id, "unchained", "it was never chained: written with the chaining trigger disabled")
