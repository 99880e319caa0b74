"""The audit log: every action appended to a hash chain; the database refuses updates and deletes;
`manage.py audit verify` finds an altered, a removed and an inserted entry and exits non-zero."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from command import audit
from command.models import AuditEntry
from tests.dispatch_support import Dongcheng, dongcheng  # noqa: F401

pytestmark = pytest.mark.django_db


def make_entries(d: Dongcheng, n: int = 3) -> list[AuditEntry]:
    for _ in range(n):
        body = {"lon": d.lon, "lat": d.lat, "category": "E0201", "source": "patrol"}
        assert d.api("donghuamen", "post", "/api/tasks", body).status_code == 201
    # The test's transaction never commits: chain its entries as the commit would.
    assert AuditEntry.objects.filter(seq__isnull=True).exists()
    audit.seal()
    return list(AuditEntry.objects.order_by("-id")[:n])[::-1]


def run_verify() -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("audit", "verify", stdout=out, stderr=StringIO())
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()
    return 0, out.getvalue()


@contextmanager
def trigger_off() -> Iterator[None]:
    """What an attacker with the table owner's rights could do (the test's transaction undoes it)."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE command_auditentry DISABLE TRIGGER USER")
    yield
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE command_auditentry ENABLE TRIGGER USER")


def test_every_action_is_chained_and_the_chain_verifies(dongcheng: Dongcheng) -> None:  # noqa: F811
    entries = make_entries(dongcheng)
    assert [e.action for e in entries] == ["create"] * 3
    assert entries[1].prev_hash == entries[0].hash and entries[2].prev_hash == entries[1].hash
    assert entries[2].seq == entries[1].seq + 1 == entries[0].seq + 2  # type: ignore[operator]
    assert (entries[0].after or {})["category"] == "E0201" and entries[0].actor == "donghuamen"
    code, out = run_verify()
    assert code == 0 and "chain intact" in out


def test_the_database_refuses_update_delete_and_truncate(dongcheng: Dongcheng) -> None:  # noqa: F811
    entry = make_entries(dongcheng, 1)[0]
    for statement in ("UPDATE command_auditentry SET actor = 'x' WHERE id = %s",
                      "DELETE FROM command_auditentry WHERE id = %s", "TRUNCATE command_auditentry"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement, [entry.pk] if "%s" in statement else None)
    assert AuditEntry.objects.filter(pk=entry.pk, actor="donghuamen").exists()


def test_an_altered_entry_is_found(dongcheng: Dongcheng) -> None:  # noqa: F811
    entries = make_entries(dongcheng)
    with trigger_off(), connection.cursor() as cursor:
        cursor.execute("UPDATE command_auditentry SET after = jsonb_set(after, '{state}', '\"closed\"') WHERE id = %s",
                       [entries[1].pk])
    code, out = run_verify()
    assert code == 1 and f"entry {entries[1].pk}: altered" in out
    assert f"entry {entries[2].pk}" not in out  # the next link still holds: only the content changed


def test_a_removed_entry_is_found(dongcheng: Dongcheng) -> None:  # noqa: F811
    entries = make_entries(dongcheng)
    with trigger_off(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM command_auditentry WHERE id = %s", [entries[1].pk])
    code, out = run_verify()
    assert code == 1 and f"entry {entries[2].pk}: broken_link" in out


def test_an_inserted_entry_is_found(dongcheng: Dongcheng) -> None:  # noqa: F811
    entries = make_entries(dongcheng, 2)
    # A forged entry with a well-formed hash of its own, slipped in between two real ones (the
    # real second entry is moved along the chain to make room).
    with trigger_off(), connection.cursor() as cursor:
        cursor.execute("UPDATE command_auditentry SET seq = seq + 1 WHERE id = %s", [entries[1].pk])
        at, first_seq, first_hash = entries[0].at, entries[0].seq or 0, entries[0].hash or ""
        content = audit.content_hash(at, "intruder", "close", "task", "1", None, {"state": "closed"})
        cursor.execute("INSERT INTO command_auditentry (at, actor, action, object_type, object_id, before, after,"
                       " content_hash, seq, prev_hash, hash) VALUES (%s, 'intruder', 'close', 'task', '1', NULL,"
                       " '{\"state\": \"closed\"}', %s, %s, %s, %s) RETURNING id",
                       [at, content, first_seq + 1, first_hash, audit.link_hash(first_hash, content)])
        forged = cursor.fetchone()[0]
    code, out = run_verify()
    assert code == 1 and f"entry {entries[1].pk}: broken_link" in out
    assert f"entry {forged}:" not in out  # the forgery itself is well-formed: its successor gives it away


def test_an_entry_slipped_in_unsealed_is_found(dongcheng: Dongcheng) -> None:  # noqa: F811
    """Written straight into the table with a made-up content hash: the next seal chains it, and
    verify, which recomputes every content hash, finds it."""
    make_entries(dongcheng, 1)
    with trigger_off(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO command_auditentry (at, actor, action, object_type, object_id, content_hash)"
                       " VALUES (now(), 'intruder', 'close', 'task', '1', %s) RETURNING id", ["0" * 64])
        slipped = cursor.fetchone()[0]
    code, out = run_verify()
    assert code == 1 and f"entry {slipped}: altered" in out


def test_entries_are_sealed_in_order_with_their_content_hashes(dongcheng: Dongcheng) -> None:  # noqa: F811
    body = {"lon": dongcheng.lon, "lat": dongcheng.lat, "category": "E0201", "source": "patrol"}
    for _ in range(2):
        assert dongcheng.api("donghuamen", "post", "/api/tasks", body).status_code == 201
    first, second = AuditEntry.objects.order_by("-id")[:2][::-1]
    assert first.seq is None and first.hash is None and len(first.content_hash) == 64  # not sealed yet
    assert audit.seal(wait=False) == 2  # this transaction's two entries (nothing else is pending)
    first.refresh_from_db()
    second.refresh_from_db()
    before = AuditEntry.objects.filter(seq=(first.seq or 0) - 1).values_list("hash", flat=True).first()
    assert first.prev_hash == (before or audit.GENESIS) and second.prev_hash == first.hash
    assert second.seq == (first.seq or 0) + 1
    assert second.hash == audit.link_hash(first.hash or "", second.content_hash)
    assert audit.seal() == 0
