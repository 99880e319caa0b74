"""Statement-level triggers that bump a layer's version whenever its source table changes.

FOR EACH STATEMENT: a COPY of 141,800 cameras or an UPDATE of many rows bumps once. The UPDATE of
the version row runs in the writer's transaction, so a reader sees the new version exactly when
it sees the new rows; concurrent writers of the same table queue on that one row until commit,
which is fine for these slow-changing tables.

Officers and vehicles get no trigger on purpose: the realtime ingest moves their latest position
thousands of times a second, and a version row locked per statement would serialise it. Their
tiles are "live" instead (tiles/README.md): cached for a few seconds at most."""

from django.db import migrations

SOURCES = {
    "districts": "geo_district",
    "streets": "geo_street",
    "gridcells": "geo_gridcell",
    "hotspots": "geo_hotspotpoint",
    "cameras": "geo_camera",
}

FUNCTION = """
CREATE OR REPLACE FUNCTION tiles_bump_layer_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tiles_layerversion (layer, version, changed_at)
    VALUES (TG_ARGV[0], (extract(epoch FROM clock_timestamp()) * 1000)::bigint, now())
    ON CONFLICT (layer) DO UPDATE
    SET version = greatest(tiles_layerversion.version + 1, EXCLUDED.version), changed_at = now();
    RETURN NULL;
END
$$;
"""


def forward_sql() -> list[str]:
    statements = [FUNCTION]
    for layer, table in SOURCES.items():
        statements.append(
            f"CREATE TRIGGER tiles_version_{layer} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION tiles_bump_layer_version('{layer}')"
        )
        statements.append(
            f"INSERT INTO tiles_layerversion (layer, version, changed_at) "
            f"VALUES ('{layer}', (extract(epoch FROM clock_timestamp()) * 1000)::bigint, now()) "
            f"ON CONFLICT (layer) DO NOTHING"
        )
    return statements


def reverse_sql() -> list[str]:
    statements = [f"DROP TRIGGER IF EXISTS tiles_version_{layer} ON {table}" for layer, table in SOURCES.items()]
    return [*statements, "DROP FUNCTION IF EXISTS tiles_bump_layer_version()"]


class Migration(migrations.Migration):
    dependencies = [
        ("tiles", "0001_initial"),
        ("geo", "0001_initial"),
    ]

    operations = [migrations.RunSQL(forward_sql(), reverse_sql())]
