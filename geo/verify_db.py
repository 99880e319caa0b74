"""`crs verify FILE --table geo_xxx [--column geom] [--key code]`: a file's features against the
rows of a platform table, matched by key, geometries within a tolerance in metres.

The typical use: export a table before a migration, convert the export with `crs file` the way the
migration converts the table, migrate, then prove the table holds what the file says. Table and
column must be a geometry column of a platform table (geometry_columns, schema public, tables
geo_*); the key must be a column of that table. Every statement uses bound parameters or
psycopg's quoted identifiers, after that whitelist. The comparison itself is geo.crs.compare.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from psycopg import Error as DbError
from psycopg import sql

from geo.crs import files
from geo.crs.compare import KeyedResult, compare_keyed
from geo.crs.systems import CrsError

SAME_DATUM = {4326, 4490}  # CGCS2000 and WGS84: one datum for OneMap (centimetres)


class VerifyInputError(CrsError):
    pass


def _one_line(e: Exception) -> str:
    diag = getattr(e, "diag", None)
    return " ".join(str(getattr(diag, "message_primary", None) or e).split())


def geometry_column(cur, table: str, column: str) -> int:
    """The SRID of public.<table>.<column> if it is a platform geometry column; refuses anything else."""
    cur.execute("SELECT srid FROM geometry_columns WHERE f_table_schema = 'public' AND f_table_name LIKE 'geo\\_%%' "
                "AND f_table_name = %s AND f_geometry_column = %s", (table, column))
    row = cur.fetchone()
    if row is None:
        cur.execute("SELECT f_table_name || '.' || f_geometry_column FROM geometry_columns WHERE f_table_schema = "
                    "'public' AND f_table_name LIKE 'geo\\_%%' ORDER BY 1")
        known = [r[0] for r in cur.fetchall()]
        raise VerifyInputError(f"{table}.{column} is not a geometry column of a platform table (public.geo_*); "
                               f"known: {', '.join(known) or 'none'}")
    if not row[0]:
        raise VerifyInputError(f"{table}.{column} has SRID 0: its system is unknown")
    return int(row[0])


def _key_column(cur, table: str, key: str) -> None:
    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s "
                "ORDER BY ordinal_position", (table,))
    names = [r[0] for r in cur.fetchall()]
    if key not in names:
        raise VerifyInputError(f"{table} has no key column {key!r} (columns: {', '.join(names)}); use --key")


def table_geometries(cur, table: str, column: str, key: str) -> tuple[dict[str, Any], int]:
    """{key as text: shapely geometry or None}, and the number of rows with a NULL key."""
    import shapely

    cur.execute(sql.SQL("SELECT {k}::text, ST_AsBinary({c}) FROM {t}").format(
        k=sql.Identifier(key), c=sql.Identifier(column), t=sql.Identifier("public", table)))
    rows = cur.fetchall()
    geoms = shapely.from_wkb([bytes(w) if w is not None else None for _, w in rows])
    out: dict[str, Any] = {}
    nulls = 0
    for (k, _), g in zip(rows, geoms, strict=True):
        if k is None:
            nulls += 1
        elif k in out:
            raise VerifyInputError(f"key {key!r} is not unique in {table} ({k!r} repeats): choose a unique --key")
        else:
            out[k] = g
    return out, nulls


def _key(v: Any) -> str | None:
    """A file's key value as the table's ::text would print it (a Shapefile may hold 110101 as 110101.0)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if hasattr(v, "item"):  # numpy scalars
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    s = str(v)
    return None if s in ("", "<NA>", "nan") else s


def file_geometries(path: str | Path, key: str, layer: str | None, x_col: str, y_col: str,
                    encoding: str | None = None) -> tuple[dict[str, Any], int | None, str]:
    """{key: geometry} of one layer of a file, the file's EPSG code (None if unlabelled) and a label."""
    import numpy as np
    import shapely
    from pyproj import CRS

    ds = files.read_dataset(path, x_col, y_col, encoding)
    names = [x.name for x in ds.layers]
    if layer is None and len(names) > 1:
        raise VerifyInputError(f"{ds.path.name} has {len(names)} layers ({', '.join(names)}): choose one with --layer")
    if layer is not None and layer not in names:
        raise VerifyInputError(f"{ds.path.name} has no layer {layer!r} (layers: {', '.join(names)})")
    lay = ds.layers[names.index(layer) if layer else 0]
    frame = lay.frame
    if key not in frame.columns:
        cols = [c for c in frame.columns if c != getattr(frame, "_geometry_column_name", None)]
        raise VerifyInputError(f"{ds.path.name}: no key column {key!r} (columns: {', '.join(map(str, cols))}); use --key")
    if ds.driver == "CSV":
        xc, yc = frame.attrs["xy"]
        try:
            geoms = shapely.points(frame[xc].astype(float).to_numpy(), frame[yc].astype(float).to_numpy())
        except ValueError as e:
            raise VerifyInputError(f"{ds.path.name}: a coordinate is not a number ({_one_line(e)})") from None
    else:
        geoms = np.asarray(frame.geometry.values, dtype=object)
    out: dict[str, Any] = {}
    for i, (v, g) in enumerate(zip(frame[key].tolist(), geoms, strict=True)):
        k = _key(v)
        if k is None:
            raise VerifyInputError(f"{ds.path.name}: feature {i} has no {key}")
        if k in out:
            raise VerifyInputError(f"{ds.path.name}: key {key!r} is not unique ({k!r} repeats)")
        out[k] = g
    epsg = CRS.from_user_input(lay.crs).to_epsg(min_confidence=70) if lay.crs else None
    label = ds.path.name + (f" layer {lay.name}" if len(names) > 1 else "")
    return out, epsg, label


def run(conn, path: str | Path, table: str, column: str = "geom", key: str = "code", tol_m: float = 0.05,
        x_col: str = "x", y_col: str = "y", layer: str | None = None, encoding: str | None = None) -> KeyedResult:
    """Compare; bad input (not a platform table, no such key, unreadable file, another CRS) raises
    VerifyInputError. The table is read in one transaction (a consistent snapshot), changing nothing."""
    if not tol_m >= 0:
        raise VerifyInputError(f"--tol must be a distance in metres, not {tol_m}")
    try:
        with conn.transaction(), conn.cursor() as cur:
            srid = geometry_column(cur, table, column)
            _key_column(cur, table, key)
            fgeoms, epsg, label = file_geometries(path, key, layer, x_col, y_col, encoding)
            tgeoms, null_keys = table_geometries(cur, table, column, key)
    except DbError as e:
        raise VerifyInputError(f"cannot read {table}.{column}: {_one_line(e)}") from None
    notes = []
    if epsg is None:
        notes.append(f"{label} carries no CRS: taken to be EPSG:{srid} like the table")
    elif epsg != srid:
        if {epsg, srid} <= SAME_DATUM:
            notes.append(f"{label} is EPSG:{epsg}, the table EPSG:{srid}: one datum for OneMap (centimetres), "
                         "compared as they are")
        else:
            raise VerifyInputError(f"{label} is EPSG:{epsg} but {table}.{column} is EPSG:{srid}: convert the file "
                                   f"first (crs file ... --to <the table's system>)")
    r = compare_keyed(fgeoms, tgeoms, srid, tol_m, f"{label} (key {key})", f"{table}.{column} (EPSG:{srid})")
    if null_keys:
        r.extra += [f"(NULL key) x{null_keys}"]
        r.n_table += null_keys
    r.notes += notes
    return r
