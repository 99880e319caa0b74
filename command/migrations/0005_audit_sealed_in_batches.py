"""The audit chain is sealed in batches, after commit, instead of by each transaction's commit
(command/audit.py says why: at the commit every action queued behind the lock, and a preempted
holder held up them all). `command_audit_seal(wait)` chains every committed entry not chained yet,
in id order, under the advisory lock (`wait` false: give up at once when someone else holds it).
The append-only guard lets exactly that change through: an entry not chained yet gets its place
and hashes, its content unchanged."""

from django.db import migrations

SEAL = """
DROP TRIGGER IF EXISTS command_audit_chain ON command_auditentry;
DROP FUNCTION IF EXISTS command_audit_chain();

CREATE OR REPLACE FUNCTION command_audit_seal(wait boolean) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    last_seq bigint;
    last_hash text;
    previous text;
    entry record;
    sealed integer := 0;
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock(418581342580);
    ELSIF NOT pg_try_advisory_xact_lock(418581342580) THEN
        RETURN -1;
    END IF;
    -- Each statement of this (volatile) function sees what committed before it: after the lock,
    -- the last chained entry is the last one any sealer committed.
    SELECT seq, hash INTO last_seq, last_hash FROM command_auditentry
        WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1;
    last_seq := coalesce(last_seq, 0);
    last_hash := coalesce(last_hash, repeat('0', 64));
    FOR entry IN SELECT id, content_hash FROM command_auditentry WHERE seq IS NULL ORDER BY id LOOP
        previous := last_hash;
        last_seq := last_seq + 1;
        last_hash := encode(sha256(convert_to(previous || entry.content_hash, 'UTF8')), 'hex');
        UPDATE command_auditentry SET seq = last_seq, prev_hash = previous, hash = last_hash WHERE id = entry.id;
        sealed := sealed + 1;
    END LOOP;
    RETURN sealed;
END $$;

CREATE OR REPLACE FUNCTION command_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Sealing: an entry not chained yet gets its place and hashes, nothing else changes. (A
    -- wrong seal is no way around the log: `audit verify` recomputes every hash.)
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
       AND (NEW.id, NEW.at, NEW.actor, NEW.action, NEW.object_type, NEW.object_id, NEW.before, NEW.after,
            NEW.content_hash)
           IS NOT DISTINCT FROM (OLD.id, OLD.at, OLD.actor, OLD.action, OLD.object_type, OLD.object_id,
                                 OLD.before, OLD.after, OLD.content_hash) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'command_auditentry is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

SELECT command_audit_seal(true);
"""

UNSEAL = """
DROP FUNCTION IF EXISTS command_audit_seal(boolean);
CREATE OR REPLACE FUNCTION command_audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_seq bigint;
    last_hash text;
BEGIN
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
"""


class Migration(migrations.Migration):
    dependencies = [("command", "0004_task_leaner_indexes")]

    operations = [migrations.RunSQL(SEAL, UNSEAL)]
