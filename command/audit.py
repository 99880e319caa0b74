"""全过程留痕: the hash-chained audit log.

Each entry's hash is SHA-256 over its content (time, actor, action, object, before, after) and the
previous entry's hash, so an altered entry no longer matches its hash, and a removed or inserted
entry breaks the link of the one after it. Appends are serialised by a transaction-scoped advisory
lock (held from the append to the commit of the action), so the chain has one order. A trigger
refuses UPDATE, DELETE and TRUNCATE (migration 0002)."""

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
# pg_advisory_xact_lock key: "audit" in ASCII.
AUDIT_LOCK = 0x6175646974


def canonical(value: Any) -> Any:
    """JSON values as PostgreSQL's jsonb will hand them back (so the hash can be recomputed)."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def entry_hash(prev_hash: str, at: datetime, actor: str, action: str, object_type: str, object_id: str,
               before: Any, after: Any) -> str:
    body = json.dumps([prev_hash, at.astimezone(UTC).isoformat(timespec="microseconds"), actor, action, object_type, object_id,
                       before, after], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def append(actor: str, action: str, object_type: str, object_id: str, before: Any, after: Any,
           at: datetime) -> AuditEntry:
    """Append one entry. Must run inside the transaction of the change it records."""
    assert connection.in_atomic_block, "an audit entry is written with the change it records"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_LOCK])
    last = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS
    before, after = canonical(before), canonical(after)
    # Microsecond precision is what PostgreSQL keeps: hash exactly what is stored.
    digest = entry_hash(last, at, actor, action, object_type, str(object_id), before, after)
    return AuditEntry.objects.create(at=at, actor=actor, action=action, object_type=object_type,
                                     object_id=str(object_id), before=before, after=after,
                                     prev_hash=last, hash=digest)


@dataclass(frozen=True)
class Finding:
    entry_id: int
    problem: str  # "altered" | "broken_link" (an entry removed or inserted before this one)
    detail: str


def verify(batch: int = 5000) -> Iterator[Finding | int]:
    """Walk the chain in id order. Yields findings, and the count of entries checked so far after
    each batch (for progress)."""
    previous = GENESIS
    last_id = 0
    checked = 0
    while True:
        rows = list(AuditEntry.objects.filter(id__gt=last_id).order_by("id")[:batch])
        if not rows:
            return
        for e in rows:
            if e.prev_hash != previous:
                yield Finding(e.id, "broken_link",
                              "its previous-hash does not match the entry before it: an entry was removed or inserted")
            recomputed = entry_hash(e.prev_hash, e.at, e.actor, e.action, e.object_type, e.object_id,
                                    e.before, e.after)
            if recomputed != e.hash:
                yield Finding(e.id, "altered", "its content no longer matches its hash")
            previous = e.hash
            last_id = e.id
        checked += len(rows)
        yield checked
