"""`crs migrate-db`: move every geometry column of the platform to another system, provably.

- Columns: geometry_columns of schema public, tables geo_* (or the tables named), skipping
  generated columns (the geom_3857 copies: PostgreSQL recomputes them). A partitioned table (the
  position history) is changed through its parent, never partition by partition; its row key is
  the one primary-key column besides the partition key (`id` of (id, recorded_at)), which the
  backup's own primary key then proves unique.
- --execute runs in ONE transaction: a backup of every changed column (crs_backup.b<id>_<n>:
  primary key + original geometry), the change, then the checks (counts, validity, bboxes and a
  round trip of every vertex against the backup); any failure rolls everything back.
- The change is done in SQL where PostGIS reproduces our model exactly (PROJ conversions inside a
  datum, helmert4/affine as ST_Affine, bursa7 forward as ST_Transform with +towgs84 in the
  position-vector form); otherwise (poly2, inverse Bursa) in numpy, written back through COPY.
- A column whose SRID changes is retyped; generated columns computed from it are dropped and
  re-added with their indexes (they cannot outlive a type change). Views on a column make the
  migration fail, and so roll back, with PostgreSQL's reason.
- --rollback restores the backup exactly (checked byte for byte) and drops it.
"""

from __future__ import annotations

import json
import re
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

import numpy as np
from psycopg import Error as DbError
from psycopg import sql

from geo.crs.files import transform_geometries
from geo.crs.models import ARCSEC, load_params, towgs84
from geo.crs.systems import CrsError, get_system, system_for_srid
from geo.crs.transform import build_transform

BACKUP = "crs_backup"

# Tables live ingest writes into, and the column that dates each write (ingest's received time for
# the fix log; the device's time of the latest position on the field units). Whitelisted names.
LIVE_WRITES = {"geo_positionfix": "received_at", "geo_officer": "position_at", "geo_vehicle": "position_at"}
LIVE_WINDOW_S = 600
PAUSE_HINT = ("pause it first: stop the processes that answer /api/positions and /ingest/osmand (`make serve` / "
              "uvicorn) and any `manage.py simulate`, or revoke the gateway tokens "
              "(`manage.py device_token --revoke --gateway NAME`); Traccar Client keeps unsent positions and sends "
              "them later. A write that lands after the migration would be in the old system")


class MigrationError(CrsError):
    pass


def _one_line(e: Exception) -> str:
    diag = getattr(e, "diag", None)
    return " ".join(str(getattr(diag, "message_primary", None) or e).split())


# --- discovery ---------------------------------------------------------------------------------

def discover(cur, tables: list[str] | None) -> list[dict[str, Any]]:
    filt = sql.SQL("gc.f_table_name = ANY(%(t)s)") if tables else sql.SQL("gc.f_table_name LIKE 'geo\\_%%'")
    cur.execute(sql.SQL("""
        SELECT gc.f_table_name, gc.f_geometry_column, gc.srid,
               format_type(a.atttypid, a.atttypmod),
               (SELECT min(pa.attname) FROM pg_index i JOIN pg_attribute pa
                  ON pa.attrelid = i.indrelid AND pa.attnum = ANY(i.indkey)
                WHERE i.indrelid = a.attrelid AND i.indisprimary
                  AND pa.attnum <> ALL(coalesce(pt.partattrs::int2[], '{{}}'))
                HAVING count(*) = 1)
        FROM geometry_columns gc
        JOIN pg_attribute a ON a.attrelid = format('%%I.%%I', gc.f_table_schema, gc.f_table_name)::regclass
                           AND a.attname = gc.f_geometry_column
        JOIN pg_class rel ON rel.oid = a.attrelid
        LEFT JOIN pg_partitioned_table pt ON pt.partrelid = a.attrelid
        WHERE gc.f_table_schema = 'public' AND a.attgenerated = '' AND NOT rel.relispartition AND {filt}
        ORDER BY 1, 2""").format(filt=filt), {"t": tables})
    cols = [{"table": t, "column": c, "srid_before": s, "type_before": ty, "pk": pk} for t, c, s, ty, pk in cur.fetchall()]
    if tables and (missing := sorted(set(tables) - {c["table"] for c in cols})):
        raise MigrationError(f"no geometry column in table(s) {', '.join(missing)}")
    if not cols:
        raise MigrationError("no geometry columns found")
    for c in cols:
        if not c["pk"]:
            raise MigrationError(f"{c['table']} has no single-column primary key: cannot back it up row by row")
    srids = sorted({c["srid_before"] for c in cols})
    if len(srids) > 1:
        detail = ", ".join(f"{c['table']}.{c['column']} {c['srid_before']}" for c in cols)
        raise MigrationError(f"mixed SRIDs ({detail}): migrate the tables of one SRID at a time with --tables")
    return cols


def _plan(col: dict[str, Any], target: str, params: dict[str, Any] | None) -> dict[str, Any]:
    src = system_for_srid(col["srid_before"]) if col["srid_before"] else None
    if src is None:
        raise MigrationError(f"{col['table']}.{col['column']} has SRID 0: its system is unknown")
    tgt = get_system(target)
    if tgt.epsg is None:
        raise MigrationError(f"the database stores EPSG systems only; {tgt.alias} is {tgt.kind}")
    t = build_transform(src, tgt, params)  # refuses a datum shift without parameters
    return {"transform": t, "srid_after": tgt.epsg, "path": t.describe(),
            "type_after": re.sub(r",\s*\d+\)$", f",{tgt.epsg})", col["type_before"])}


def _sql_expr(col_id: sql.Composable, src_srid: int, target_srid: int, params: dict[str, Any] | None,
              t) -> sql.Composable | None:
    """The SQL that reproduces the transform, or None when only numpy can (poly2, inverse Bursa)."""
    if params is None:
        s, d = system_for_srid(src_srid), system_for_srid(target_srid)
        if s.datum != d.datum:  # CGCS2000 <-> WGS84: the same explicit identity as in Python
            gs, gd = get_system(s.geographic), get_system(d.geographic)
            return sql.SQL("ST_Transform(ST_SetSRID(ST_Transform({c}, {a}), {b}), {d})").format(
                c=col_id, a=gs.epsg, b=gd.epsg, d=target_srid)
        return sql.SQL("ST_Transform({c}, {d})").format(c=col_id, d=target_srid)
    inverse = any("(inverse)" in step.name for step in t.steps)
    ps, pt = get_system(params["source"]), get_system(params["target"])
    start, end = (pt, ps) if inverse else (ps, pt)
    g = sql.SQL("ST_Transform({c}, {s})").format(c=col_id, s=start.epsg)
    p, model = params["parameters"], params["model"]
    if model in ("helmert4", "affine"):
        if model == "helmert4":
            th = p["theta_arcsec"] * ARCSEC
            m = np.array([[p["scale"] * np.cos(th), p["scale"] * np.sin(th), p["tx_m"]],
                          [-p["scale"] * np.sin(th), p["scale"] * np.cos(th), p["ty_m"]], [0, 0, 1]])
        else:
            m = np.array([[p["a1"], p["a2"], p["a0"]], [p["b1"], p["b2"], p["b0"]], [0, 0, 1]])
        if inverse:
            m = np.linalg.inv(m)
        vals = [float(v) for v in (m[0, 0], m[0, 1], m[1, 0], m[1, 1], m[0, 2], m[1, 2])]
        g = sql.SQL("ST_Affine({g}, {v})").format(g=g, v=sql.SQL(", ").join(sql.Literal(v) for v in vals))
    elif model == "bursa7" and not inverse:
        a, b = bursa_srids(params)
        g = sql.SQL("ST_Transform(ST_SetSRID({g}, {a}), {b})").format(g=g, a=a, b=b)
    else:
        return None
    return sql.SQL("ST_Transform(ST_SetSRID({g}, {e}), {d})").format(g=g, e=end.epsg, d=target_srid)


def bursa_proj_strings(params: dict[str, Any]) -> tuple[str, str]:
    """bursa7 as two PROJ CRS strings: the source with +towgs84 (position-vector form of our
    coordinate-frame numbers) and the target with a zero +towgs84; PROJ composes exactly our
    pipeline (cart, small-angle helmert, inverse cart)."""
    (a1, rf1), (a2, rf2) = params["ellipsoids"]["source"], params["ellipsoids"]["target"]
    return (f"+proj=longlat +a={a1!r} +rf={rf1!r} +towgs84={towgs84(params['parameters'])} +no_defs",
            f"+proj=longlat +a={a2!r} +rf={rf2!r} +towgs84=0,0,0,0,0,0,0 +no_defs")


def bursa_srids(params: dict[str, Any]) -> tuple[int, int]:
    """Two SRIDs in the user range named after the parameter file's hash. PostGIS caches a
    transform per SRID pair, while ST_Transform(g, text, text) builds it again for every row
    (about 100 us: minutes for a million points). A hash-derived number cannot meet a stale cache
    entry for other parameters."""
    base = 910_000 + (int(params["sha256"][:12], 16) % 44_000) * 2
    return base, base + 1


def _register_bursa_srids(cur, params: dict[str, Any]) -> None:
    for srid, proj in zip(bursa_srids(params), bursa_proj_strings(params), strict=True):
        cur.execute("SELECT proj4text FROM spatial_ref_sys WHERE srid = %s", (srid,))
        row = cur.fetchone()
        if row and row[0] != proj:
            raise MigrationError(f"SRID {srid} is taken by another definition; remove it from spatial_ref_sys")
        if not row:
            cur.execute("INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, proj4text, srtext) "
                        "VALUES (%s, 'onemap-crs', %s, %s, '')", (srid, srid, proj))


# --- helpers -----------------------------------------------------------------------------------

def _extent(cur, table: sql.Composable, col: str) -> list[float] | None:
    cur.execute(sql.SQL("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                        "(SELECT ST_Extent({c}) AS e FROM {t}) s").format(c=sql.Identifier(col), t=table))
    row = cur.fetchone()
    return None if row[0] is None else [float(v) for v in row]


def _check_area(plan: dict[str, Any], bbox: list[float] | None, src_alias: str) -> None:
    """The column's bbox outline (densified) must lie inside the parameters' area of validity."""
    t = plan["transform"]
    if bbox is None or t.params is None:
        return
    s = np.linspace(0, 1, 21)
    x = np.concatenate([bbox[0] + s * (bbox[2] - bbox[0]), np.full(21, bbox[2]), bbox[0] + s * (bbox[2] - bbox[0]), np.full(21, bbox[0])])
    y = np.concatenate([np.full(21, bbox[1]), bbox[1] + s * (bbox[3] - bbox[1]), np.full(21, bbox[3]), bbox[1] + s * (bbox[3] - bbox[1])])
    t(x, y)  # the params step checks its own area and raises OutsideArea
    del src_alias


def _dependants(cur, table: str, col: str) -> list[dict[str, Any]]:
    cur.execute("""
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid),
               COALESCE((SELECT array_agg(pg_get_indexdef(i.indexrelid)) FROM pg_index i
                         WHERE i.indrelid = a.attrelid AND a.attnum = ANY(i.indkey)), '{}')
        FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = format('public.%%I', %s::text)::regclass AND a.attgenerated = 's'""", (table,))
    return [{"column": n, "type": ty, "expr": ex, "indexes": list(ix)} for n, ty, ex, ix in cur.fetchall()
            if re.search(rf"\b{re.escape(col)}\b", ex)]


def _coords_m(cur, query: sql.Composable) -> tuple[np.ndarray, np.ndarray]:
    """Both sides' vertices from one row of two collections (aggregated in the same join order):
    a million rows as two WKB blobs instead of two million Python objects."""
    import shapely

    cur.execute(query)
    wa, wb = cur.fetchone()
    if wa is None:
        return np.zeros((0, 2)), np.zeros((0, 2))
    return shapely.get_coordinates(shapely.from_wkb(wa)), shapely.get_coordinates(shapely.from_wkb(wb))


def _roundtrip_max_m(cur, col: dict[str, Any], table: sql.Composable, backup: sql.Composable, params) -> float:
    """Every vertex, transformed back by the numpy inverse, against the backup (metres)."""
    new, old = _coords_m(cur, sql.SQL("SELECT ST_AsBinary(ST_Collect(t.{c})), ST_AsBinary(ST_Collect(b.geom)) "
                                      "FROM {t} t JOIN {b} b ON t.{pk} = b.pk").format(c=sql.Identifier(col["column"]), t=table,
                                                                 b=backup, pk=sql.Identifier(col["pk"])))
    if len(new) != len(old):
        return float("inf")
    if not len(new):
        return 0.0
    back = build_transform(system_for_srid(col["srid_after"]), system_for_srid(col["srid_before"]), params)
    bx, by = back(new[:, 0], new[:, 1])
    dx, dy = bx - old[:, 0], by - old[:, 1]
    if not system_for_srid(col["srid_before"]).projected:
        dx, dy = dx * 111_320.0 * np.cos(np.radians(old[:, 1])), dy * 111_320.0
    return float(np.max(np.hypot(dx, dy)))


def _ensure_log(cur) -> None:
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {s}").format(s=sql.Identifier(BACKUP)))
    cur.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {s}.migration (id serial PRIMARY KEY, started timestamptz "
                        "NOT NULL DEFAULT now(), target text NOT NULL, params_sha256 text, params jsonb, state text NOT NULL, "
                        "columns jsonb NOT NULL)").format(s=sql.Identifier(BACKUP)))


def _latest(cur) -> tuple[int, dict[str, Any]]:
    cur.execute("SELECT to_regclass('crs_backup.migration') IS NOT NULL")
    if cur.fetchone()[0]:
        cur.execute("SELECT id, target, params, columns, started FROM crs_backup.migration "
                    "WHERE state = 'applied' ORDER BY id DESC LIMIT 1")
        row = cur.fetchone()
        if row:
            return row[0], {"target": row[1], "params": row[2], "columns": row[3], "started": row[4].isoformat()}
    raise MigrationError("no applied migration to verify or roll back")


def _apply_column(cur, col: dict[str, Any], plan: dict[str, Any], params, mig_id: int, n: int) -> None:
    table, cid = sql.Identifier(col["table"]), sql.Identifier(col["column"])
    backup = sql.Identifier(BACKUP, f"b{mig_id}_{n}")
    col["backup"] = f"b{mig_id}_{n}"
    cur.execute(sql.SQL("CREATE TABLE {b} AS SELECT {pk} AS pk, {c} AS geom FROM {t}").format(
        b=backup, pk=sql.Identifier(col["pk"]), c=cid, t=table))
    cur.execute(sql.SQL("ALTER TABLE {b} ADD PRIMARY KEY (pk)").format(b=backup))
    deps = _dependants(cur, col["table"], col["column"])
    col["dependants"] = deps
    for d in deps:
        cur.execute(sql.SQL("ALTER TABLE {t} DROP COLUMN {d}").format(t=table, d=sql.Identifier(d["column"])))
    new_type = sql.SQL(plan["type_after"])  # from format_type(): a type name, not user input
    if params and params["model"] == "bursa7":
        _register_bursa_srids(cur, params)  # inside the transaction: gone again if it fails
    expr = _sql_expr(cid, col["srid_before"], plan["srid_after"], params, plan["transform"])
    if expr is not None:
        cur.execute(sql.SQL("ALTER TABLE {t} ALTER COLUMN {c} TYPE {ty} USING {e}").format(
            t=table, c=cid, ty=new_type, e=expr))
    else:
        _apply_in_numpy(cur, col, plan, table, cid, new_type)
    for d in deps:
        cur.execute(sql.SQL("ALTER TABLE {t} ADD COLUMN {d} {ty} GENERATED ALWAYS AS ({e}) STORED").format(
            t=table, d=sql.Identifier(d["column"]), ty=sql.SQL(d["type"]), e=sql.SQL(d["expr"])))
        for ix in d["indexes"]:
            cur.execute(ix)


def _apply_in_numpy(cur, col, plan, table, cid, new_type) -> None:
    import shapely

    cur.execute(sql.SQL("SELECT {pk}, ST_AsBinary({c}) FROM {t}").format(pk=sql.Identifier(col["pk"]), c=cid, t=table))
    rows = cur.fetchall()
    geoms = transform_geometries(shapely.from_wkb([r[1] for r in rows]), plan["transform"])
    cur.execute("CREATE TEMP TABLE crs_new (pk text PRIMARY KEY, wkb bytea) ON COMMIT DROP")
    with cur.copy("COPY crs_new (pk, wkb) FROM STDIN") as copy:
        for (pk, _), wkb in zip(rows, shapely.to_wkb(geoms), strict=True):
            copy.write_row((str(pk), wkb))
    cur.execute(sql.SQL("ALTER TABLE {t} ALTER COLUMN {c} TYPE {ty} USING ST_SetSRID({c}, {s})").format(
        t=table, c=cid, ty=new_type, s=plan["srid_after"]))
    cur.execute(sql.SQL("UPDATE {t} SET {c} = ST_SetSRID(ST_GeomFromWKB(n.wkb), {s}) FROM crs_new n "
                        "WHERE {t}.{pk}::text = n.pk").format(t=table, c=cid, s=plan["srid_after"],
                                                                pk=sql.Identifier(col["pk"])))
    cur.execute("DROP TABLE crs_new")


def _check_column(cur, col: dict[str, Any], params, tol_m: float) -> list[str]:
    table = sql.Identifier(col["table"])
    backup = sql.Identifier(BACKUP, col["backup"])
    c = sql.Identifier(col["column"])
    cur.execute(sql.SQL("SELECT (SELECT count(*) FROM {t}), (SELECT count(*) FROM {b}), "
                        "(SELECT count(*) FROM {t} WHERE NOT ST_IsValid({c})), "
                        "(SELECT count(*) FROM {b} WHERE NOT ST_IsValid(geom))").format(t=table, b=backup, c=c))
    rows, rows_b, invalid, invalid_b = cur.fetchone()
    col.update(rows=rows, invalid=invalid, bbox_after=_extent(cur, table, col["column"]),
               bbox_before=_extent(cur, backup, "geom"))
    col["roundtrip_max_m"] = _roundtrip_max_m(cur, col, table, backup, params)
    col.update(rows_backup=rows_b, invalid_before=invalid_b, tol_m=tol_m, checks=[
        {"check": "row count equals the backup", "value": f"{rows} / {rows_b}", "limit": "equal", "ok": rows == rows_b},
        {"check": "no geometry became invalid", "value": f"{invalid} invalid ({invalid_b} before)",
         "limit": f"<= {invalid_b}", "ok": invalid <= invalid_b},
        {"check": "every vertex transformed back matches the backup (m)", "value": col["roundtrip_max_m"],
         "limit": f"<= {tol_m}", "ok": bool(col["roundtrip_max_m"] <= tol_m)},
    ])
    problems = []
    if rows != rows_b:
        problems.append(f"{col['table']}.{col['column']}: {rows} rows against {rows_b} in the backup")
    if invalid > invalid_b:
        problems.append(f"{col['table']}.{col['column']}: {invalid - invalid_b} geometries became invalid")
    if not col["roundtrip_max_m"] <= tol_m:
        problems.append(f"{col['table']}.{col['column']}: round trip {col['roundtrip_max_m']:.6f} m > {tol_m} m")
    return problems


# --- the four modes ----------------------------------------------------------------------------

def run(conn, mode: str, target: str, params_path: str | None = None, tables: list[str] | None = None,
        tol_m: float = 0.001, progress: Any = None, fail_after: int | None = None,
        declared: dict[tuple[str, str], int] | None = None, allow_live_writes: bool = False) -> dict[str, Any]:
    """Run one mode on a psycopg connection; returns the summary the report is written from.
    `declared`: (table, column) -> the SRID the application's models declare (warned about when the
    target differs). Live ingest into a migrated table is warned about on a dry run and refused on
    --execute unless `allow_live_writes`. `fail_after` (tests) raises after that many columns were
    changed, to prove the rollback."""
    params = load_params(params_path) if params_path else None
    summary: dict[str, Any] = {"action": mode, "target": target, "params": params_path, "columns": [], "notes": [],
                               "warnings": [], "tol_m": tol_m, "declared": declared or {},
                               "allow_live_writes": allow_live_writes}
    t0 = time.perf_counter()
    bar = progress or (lambda total, desc: nullcontext(None))
    try:
        with conn.transaction(), conn.cursor() as cur:
            if mode in ("dry-run", "execute"):
                _dry_or_execute(cur, mode, target, params, tables, tol_m, bar, fail_after, summary)
            elif mode == "verify":
                _verify(cur, tol_m, bar, summary)
            elif mode == "rollback":
                _rollback(cur, bar, summary)
            else:
                raise MigrationError(f"unknown mode {mode!r}")
    except DbError as e:
        raise MigrationError(f"migration {mode} failed and was rolled back: {_one_line(e)}") from None
    summary["elapsed_s"] = time.perf_counter() - t0
    return summary


def _dry_or_execute(cur, mode, target, params, tables, tol_m, bar, fail_after, summary) -> None:
    cols = discover(cur, tables)
    plans = []
    for col in cols:
        plan = _plan(col, target, params)
        col["bbox_before"] = _extent(cur, sql.Identifier(col["table"]), col["column"])
        _check_area(plan, col["bbox_before"], col["table"])
        cur.execute(sql.SQL("SELECT count(*) FROM {t}").format(t=sql.Identifier(col["table"])))
        col.update(rows=cur.fetchone()[0], srid_after=plan["srid_after"])
        plans.append(plan)
        summary["path"] = plan["path"]
    summary["columns"] = cols
    if all(c["srid_before"] == c["srid_after"] for c in cols) and params is None:
        raise MigrationError(f"every column is already in {target} (EPSG:{cols[0]['srid_before']}): nothing to do")
    summary["warnings"] += _model_srid_warnings(cols, summary["declared"])
    live = _live_writes(cur, cols)
    if live and mode == "execute" and not summary["allow_live_writes"]:
        raise MigrationError(f"live ingest is writing into {live}; {PAUSE_HINT} (or pass --allow-live-writes)")
    if live:
        summary["warnings"].append(f"live ingest is writing into {live}: {PAUSE_HINT}")
    if mode == "dry-run":
        summary["outcome"] = "dry run: nothing changed"
        return
    _ensure_log(cur)
    cur.execute("INSERT INTO crs_backup.migration (target, params_sha256, params, state, columns) VALUES "
                "(%s, %s, %s, 'running', '[]') RETURNING id, started",
                (target, params and params["sha256"], params and json.dumps(params)))
    mig_id, started = cur.fetchone()
    summary.update(migration_id=mig_id, started=started.isoformat())
    problems: list[str] = []
    with bar(len(cols), "migrating columns") as b:
        for n, (col, plan) in enumerate(zip(cols, plans, strict=True)):
            if fail_after is not None and n >= fail_after:
                raise MigrationError(f"forced failure after {n} column(s) (test)")
            t = time.perf_counter()
            _apply_column(cur, col, plan, params, mig_id, n)
            problems += _check_column(cur, col, params, tol_m)
            col["seconds"] = time.perf_counter() - t
            if b:
                b.update(1)
    if problems:
        raise MigrationError(f"verification failed, nothing changed: {problems[0]}")
    if params and params["model"] == "bursa7":  # only the change needed them
        cur.execute("DELETE FROM spatial_ref_sys WHERE srid = ANY(%s)", (list(bursa_srids(params)),))
    cur.execute("UPDATE crs_backup.migration SET state = 'applied', columns = %s WHERE id = %s",
                (json.dumps(cols, default=str), mig_id))
    summary["outcome"] = f"applied and verified (backup in schema {BACKUP}; undo with --rollback)"


def _model_srid_warnings(cols: list[dict[str, Any]], declared: dict[tuple[str, str], int]) -> list[str]:
    off = [f"{c['table']}.{c['column']} (models: {declared[(c['table'], c['column'])]})" for c in cols
           if (c["table"], c["column"]) in declared and declared[(c["table"], c["column"])] != c["srid_after"]]
    if not off:
        return []
    srid = cols[0]["srid_after"]
    return [f"the target SRID {srid} differs from what the Django models declare for {len(off)} column(s): "
            f"{', '.join(off[:6])}{' ...' if len(off) > 6 else ''}. After --execute the application would write "
            f"geometries in the declared SRID into EPSG:{srid} columns and PostGIS would refuse them: change the "
            "models (geo/models/fields.py SRID) and add their migration in the same release"]


def _live_writes(cur, cols: list[dict[str, Any]]) -> str:
    """'geo_positionfix (412 rows in the last 600 s, latest 3 s ago), ...' for migrated tables that
    live ingest wrote into recently; '' when none did."""
    found = []
    for table in sorted({c["table"] for c in cols} & set(LIVE_WRITES)):
        col = sql.Identifier(LIVE_WRITES[table])
        cur.execute(sql.SQL("SELECT count(*), extract(epoch FROM now() - max({c})) FROM {t} "
                            "WHERE {c} > now() - make_interval(secs => %s)").format(c=col, t=sql.Identifier(table)),
                    (LIVE_WINDOW_S,))
        n, age = cur.fetchone()
        if n:
            found.append(f"{table} ({n} row(s) with {LIVE_WRITES[table]} in the last {LIVE_WINDOW_S} s, latest "
                         f"{max(float(age), 0.0):.0f} s ago)")
    return ", ".join(found)


def _verify(cur, tol_m, bar, summary) -> None:
    mig_id, mig = _latest(cur)
    params = mig["params"]  # the parameter file is kept in the log, hash and all
    summary.update(migration_id=mig_id, started=mig["started"], target=mig["target"], columns=mig["columns"])
    problems: list[str] = []
    with bar(len(mig["columns"]), "verifying columns") as b:
        for col in mig["columns"]:
            t = time.perf_counter()
            problems += _check_column(cur, col, params, tol_m)
            col["seconds"] = time.perf_counter() - t
            if b:
                b.update(1)
    summary["notes"] = problems
    summary["outcome"] = f"FAILED: {problems[0]}" if problems else "verified: counts, validity and round trip pass"


def _rollback(cur, bar, summary) -> None:
    mig_id, mig = _latest(cur)
    summary.update(migration_id=mig_id, started=mig["started"], target=mig["target"], columns=mig["columns"])
    with bar(len(mig["columns"]), "restoring columns") as b:
        for col in reversed(mig["columns"]):
            t = time.perf_counter()
            table, cid = sql.Identifier(col["table"]), sql.Identifier(col["column"])
            backup, pk = sql.Identifier(BACKUP, col["backup"]), sql.Identifier(col["pk"])
            cur.execute(sql.SQL("SELECT count(*) FROM {t} t LEFT JOIN {b} b ON t.{pk} = b.pk WHERE b.pk IS NULL")
                        .format(t=table, b=backup, pk=pk))
            if added := cur.fetchone()[0]:
                raise MigrationError(f"{col['table']} has {added} row(s) added since the migration: restore by hand")
            for d in col.get("dependants", []):
                cur.execute(sql.SQL("ALTER TABLE {t} DROP COLUMN {d}").format(t=table, d=sql.Identifier(d["column"])))
            cur.execute(sql.SQL("ALTER TABLE {t} ALTER COLUMN {c} TYPE {ty} USING ST_SetSRID({c}, {s})").format(
                t=table, c=cid, ty=sql.SQL(col["type_before"]), s=col["srid_before"]))
            cur.execute(sql.SQL("UPDATE {t} SET {c} = b.geom FROM {b} b WHERE {t}.{pk} = b.pk").format(
                t=table, c=cid, b=backup, pk=pk))
            for d in col.get("dependants", []):
                cur.execute(sql.SQL("ALTER TABLE {t} ADD COLUMN {d} {ty} GENERATED ALWAYS AS ({e}) STORED").format(
                    t=table, d=sql.Identifier(d["column"]), ty=sql.SQL(d["type"]), e=sql.SQL(d["expr"])))
                for ix in d["indexes"]:
                    cur.execute(ix)
            cur.execute(sql.SQL("SELECT count(*) FROM {t} t JOIN {b} b ON t.{pk} = b.pk "
                                "WHERE ST_AsEWKB(t.{c}) IS DISTINCT FROM ST_AsEWKB(b.geom)").format(
                t=table, b=backup, pk=pk, c=cid))
            if differ := cur.fetchone()[0]:
                raise MigrationError(f"{col['table']}.{col['column']}: {differ} rows differ from the backup after restore")
            cur.execute(sql.SQL("DROP TABLE {b}").format(b=backup))
            col["srid_after"] = col["srid_before"]
            col["checks"] = [{"check": "every row restored byte for byte from the backup", "value": f"{differ} differ",
                              "limit": "0", "ok": True}]
            col["seconds"] = time.perf_counter() - t
            if b:
                b.update(1)
    cur.execute("UPDATE crs_backup.migration SET state = 'rolled_back' WHERE id = %s", (mig_id,))
    summary["outcome"] = "rolled back: every column restored exactly from its backup"
    summary["notes"] = [f"restored at {datetime.now(UTC).isoformat(timespec='seconds')}"]
