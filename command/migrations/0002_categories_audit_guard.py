"""The shipped classification (data/categories.json) and the audit log's guard: a trigger that
refuses UPDATE, DELETE and TRUNCATE on command_auditentry, so the application (and anyone with
its credentials who does not own the table's triggers) can only append."""

import json
from pathlib import Path

from django.db import migrations

GUARD = """
CREATE OR REPLACE FUNCTION command_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'command_auditentry is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER command_audit_no_update BEFORE UPDATE OR DELETE ON command_auditentry
    FOR EACH ROW EXECUTE FUNCTION command_audit_append_only();
CREATE TRIGGER command_audit_no_truncate BEFORE TRUNCATE ON command_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION command_audit_append_only();
"""
UNGUARD = """
DROP TRIGGER IF EXISTS command_audit_no_update ON command_auditentry;
DROP TRIGGER IF EXISTS command_audit_no_truncate ON command_auditentry;
DROP FUNCTION IF EXISTS command_audit_append_only();
"""


def load_categories(apps, schema_editor):
    Category = apps.get_model("command", "Category")
    data = json.loads((Path(__file__).resolve().parent.parent / "data" / "categories.json").read_text())
    for code, kind, major, major_name, minor, name, hotspot, hours, accept, kinds in data["categories"]:
        Category.objects.update_or_create(code=code, defaults=dict(
            kind=kind, major_code=major, major_name=major_name, minor_code=minor, name=name,
            hotspot_category=hotspot, deadline_hours=hours, accept_minutes=accept, unit_kinds=kinds))


class Migration(migrations.Migration):
    dependencies = [("command", "0001_initial")]

    operations = [
        migrations.RunPython(load_categories, migrations.RunPython.noop),
        migrations.RunSQL(GUARD, UNGUARD),
    ]
