"""The audit chain is made when a transaction commits, in the database (command/audit.py says why).

Each entry now carries `content_hash` (SHA-256 of its content, written by the application) and
`seq` (its place in the chain); a deferred constraint trigger sets `seq`, `prev_hash` and `hash` =
SHA-256(prev_hash + content_hash) at commit, under the advisory lock. The append-only guard lets
that one update through: from inside a trigger, on an entry not chained yet, content unchanged.

Entries written before this migration are re-chained in the new form, in id order, after their
old chain is checked: a broken old chain stops the migration (investigate it with the previous
release's `manage.py audit verify` first), so a tampered log is never re-sealed as intact."""

import hashlib
import json
from datetime import UTC

from django.db import migrations, models

CHAIN = """
CREATE OR REPLACE FUNCTION command_audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_seq bigint;
    last_hash text;
BEGIN
    -- One chain order: appends are serialised until this transaction's commit completes. Each
    -- statement of this (volatile) function sees what committed before it, so after the lock the
    -- last entry is the last committed one.
    PERFORM pg_advisory_xact_lock(418581342580);
    SELECT seq, hash INTO last_seq, last_hash FROM command_auditentry
        WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1;
    last_hash := coalesce(last_hash, repeat('0', 64));
    UPDATE command_auditentry
        SET seq = coalesce(last_seq, 0) + 1, prev_hash = last_hash,
            hash = encode(sha256(convert_to(last_hash || content_hash, 'UTF8')), 'hex')
        WHERE id = NEW.id AND seq IS NULL;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER command_audit_chain AFTER INSERT ON command_auditentry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION command_audit_chain();

CREATE OR REPLACE FUNCTION command_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND pg_trigger_depth() > 1 AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
       AND (NEW.id, NEW.at, NEW.actor, NEW.action, NEW.object_type, NEW.object_id, NEW.before, NEW.after,
            NEW.content_hash)
           IS NOT DISTINCT FROM (OLD.id, OLD.at, OLD.actor, OLD.action, OLD.object_type, OLD.object_id,
                                 OLD.before, OLD.after, OLD.content_hash) THEN
        RETURN NEW;  -- the chaining trigger sealing an entry at commit
    END IF;
    RAISE EXCEPTION 'command_auditentry is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""
UNCHAIN = """
DROP TRIGGER IF EXISTS command_audit_chain ON command_auditentry;
DROP FUNCTION IF EXISTS command_audit_chain();
CREATE OR REPLACE FUNCTION command_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'command_auditentry is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def _old_hash(prev, at, actor, action, object_type, object_id, before, after):
    body = json.dumps([prev, at.astimezone(UTC).isoformat(timespec="microseconds"), actor, action, object_type,
                       object_id, before, after], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def rechain(apps, schema_editor):
    AuditEntry = apps.get_model("command", "AuditEntry")
    rows = list(AuditEntry.objects.order_by("id"))
    if not rows:
        return
    previous = "0" * 64
    for e in rows:
        if e.prev_hash != previous or _old_hash(e.prev_hash, e.at, e.actor, e.action, e.object_type, e.object_id,
                                                e.before, e.after) != e.hash:
            raise RuntimeError(f"audit entry {e.id} fails the old chain's check: not re-chaining a log that was "
                               "tampered with; run the previous release's `manage.py audit verify`")
        previous = e.hash
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("ALTER TABLE command_auditentry DISABLE TRIGGER command_audit_no_update")
        previous = "0" * 64
        for seq, e in enumerate(rows, start=1):
            content = hashlib.sha256(json.dumps(
                [e.at.astimezone(UTC).isoformat(timespec="microseconds"), e.actor, e.action, e.object_type,
                 e.object_id, e.before, e.after], sort_keys=True, ensure_ascii=False,
                separators=(",", ":")).encode()).hexdigest()
            digest = hashlib.sha256((previous + content).encode()).hexdigest()
            cursor.execute("UPDATE command_auditentry SET content_hash = %s, seq = %s, prev_hash = %s, hash = %s"
                           " WHERE id = %s", [content, seq, previous, digest, e.id])
            previous = digest
        cursor.execute("ALTER TABLE command_auditentry ENABLE TRIGGER command_audit_no_update")


class Migration(migrations.Migration):
    dependencies = [("command", "0002_categories_audit_guard")]

    operations = [
        migrations.AddField("auditentry", "content_hash", models.CharField(default="", max_length=64)),
        migrations.AddField("auditentry", "seq", models.BigIntegerField(null=True, unique=True)),
        migrations.AlterField("auditentry", "prev_hash", models.CharField(max_length=64, null=True)),
        migrations.AlterField("auditentry", "hash", models.CharField(max_length=64, null=True, unique=True)),
        migrations.RunPython(rechain, migrations.RunPython.noop, elidable=False),
        migrations.RunSQL(CHAIN, UNCHAIN),
    ]
