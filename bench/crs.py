"""Coordinate-migration throughput: EPSG transform, GCJ-02 forward/inverse, database migration.

Usage: .venv/bin/python bench/crs.py [--no-db] [--no-record] [--file-only]
`--file-only` runs just `manage.py crs file` on a 1,000,000-point Shapefile (wall time and the
command's peak resident memory, from /usr/bin/time), the figure behind the streamed conversion.
The database figure uses a private scratch database (created and dropped here) with one table of
1,000,000 Beijing 1954 points migrated to CGCS2000 with Bursa-Wolf parameters in one transaction
(backup, change, full round-trip verification). The fixture tables are never touched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import command_line, percentiles, record, table  # noqa: E402
from geo.crs import webmaps  # noqa: E402
from geo.crs.transform import build_transform  # noqa: E402


def _naive_gcj02_to_wgs84(lon, lat):
    glon, glat = webmaps.wgs84_to_gcj02(lon, lat)
    return 2 * lon - glon, 2 * lat - glat


def timed(fn, n_points: int, repeat: int = 3) -> tuple[float, dict[str, float]]:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    p = percentiles(samples)
    return n_points / p["min"], p


def bench_db(n: int) -> tuple[float, dict[str, float]]:
    import psycopg

    from config.env import database_from_url, local_database_url
    from geo import migrate_db
    from geo.crs.fit import fit
    from geo.crs.models import save_params
    from tests.crs_synthetic import bursa_points

    d = database_from_url(os.environ.get("DATABASE_URL") or local_database_url())

    def conninfo(db: str) -> str:
        return psycopg.conninfo.make_conninfo(dbname=db, user=d["USER"] or None, host=d["HOST"] or None,
                                              port=d["PORT"] or None, password=d["PASSWORD"] or None)

    name = "onemap_crs_bench"
    admin = psycopg.connect(conninfo("postgres"), autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(conninfo(name), autocommit=True) as conn, tempfile.TemporaryDirectory() as tmp:
            conn.execute("CREATE EXTENSION postgis")
            conn.execute("CREATE TABLE crs_bench_points (id bigint PRIMARY KEY, geom geometry(Point, 4214))")
            conn.execute("INSERT INTO crs_bench_points SELECT i, ST_SetSRID(ST_MakePoint(115.8 + random() * 1.3, "
                         "39.7 + random() * 1.0), 4214) FROM generate_series(1, %s) i", (n,))
            conn.execute("VACUUM ANALYZE crs_bench_points")
            params = Path(tmp) / "p.json"
            save_params(fit(bursa_points(), "bursa7", "bj54", "cgcs2000").doc, params)
            samples = []
            for _ in range(2):
                t0 = time.perf_counter()
                s = migrate_db.run(conn, "execute", "cgcs2000", str(params), tables=["crs_bench_points"])
                samples.append(time.perf_counter() - t0)
                assert s["columns"][0]["roundtrip_max_m"] < 1e-3
                migrate_db.run(conn, "rollback", "cgcs2000", None)
            p = percentiles(samples)
            return n / p["min"], p
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


_MAKE = ("import sys, numpy as np, geopandas as gpd, pyogrio, shapely; n = int(sys.argv[2]); "
         "rng = np.random.default_rng(1); pyogrio.write_dataframe(gpd.GeoDataFrame({'id': np.arange(n), "
         "'name': [f'p{i}' for i in range(n)]}, geometry=shapely.points(rng.uniform(115.6, 117.3, n), "
         "rng.uniform(39.5, 40.9, n)), crs='EPSG:4490'), sys.argv[1])")
_WHOLE = ("import sys; from geo.crs import files; from geo.crs.transform import build_transform; "
          "t = build_transform('cgcs2000', 'cgcs2000-gk39'); ds = files.read_dataset(sys.argv[1]); "
          "files.write_dataset(files.transform_dataset(ds, t), sys.argv[2], t.target)")


def bench_file(n: int) -> list[tuple[str, float, float, int]]:
    """`manage.py crs file` as a user runs it (its own process): a Shapefile of n points with two
    attribute columns -> GeoPackage, CGCS2000 -> GK zone 39; beside it, in the same run, the path
    before streaming (whole file in memory: read_dataset / transform_dataset / write_dataset).
    Returns (name, seconds, peak RSS MiB, exit code) per run."""
    import subprocess

    import pyogrio

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.shp", Path(tmp) / "out.gpkg"
        # made in a child, so this process stays small (a fork would otherwise count it in the child's RSS)
        subprocess.run([sys.executable, "-c", _MAKE, str(src), str(n)], cwd=root, check=True)
        out = []
        for name, cmd in [
            ("manage.py crs file in.shp out.gpkg cgcs2000 -> cgcs2000-gk39 (streamed)",
             ["manage.py", "crs", "file", str(src), str(dst), "--from", "cgcs2000", "--to", "cgcs2000-gk39"]),
            ("reference: the same in memory (the path before streaming)", ["-c", _WHOLE, str(src), str(dst)]),
        ]:
            dst.unlink(missing_ok=True)
            # /usr/bin/time -f '%e %M': wall seconds and peak RSS (KiB) of the command alone
            r = subprocess.run(["/usr/bin/time", "-f", "%e %M", sys.executable, *cmd], cwd=root,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
            seconds, kib = r.stderr.strip().splitlines()[-1].split()
            info = pyogrio.read_info(dst)
            assert info["features"] == n and info["capabilities"]["fast_spatial_filter"]
            out.append((name, float(seconds), float(kib) / 1024.0, r.returncode))
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-db", action="store_true")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--file-only", action="store_true", help="only the `crs file` figures (1-2 minutes)")
    args = ap.parse_args()
    if args.file_only:
        n = 1_000_000
        text = table(["operation", "points", "wall s", "peak RSS MiB", "exit"],
                     [[name, f"{n:,}", f"{seconds:.1f}", f"{rss:.0f}", rc] for name, seconds, rss, rc in bench_file(n)])
        print(text)
        if not args.no_record:
            record("crs file: 1,000,000-point Shapefile -> GeoPackage", command_line(), text,
                   "One process each, as a user runs it; peak RSS from /usr/bin/time (a bare `manage.py crs list` is 125 MiB). "
                   "Streamed: chunks of 100,000 features, the GeoPackage R-tree built once at the end. "
                   f"Load average at the end: {os.getloadavg()[0]:.1f} on this machine shared with other developers.")
        return
    rng = np.random.default_rng(0)
    n5, n1 = 5_000_000, 1_000_000
    lon5, lat5 = rng.uniform(115.4, 117.5, n5), rng.uniform(39.4, 41.1, n5)
    lon1, lat1 = lon5[:n1].copy(), lat5[:n1].copy()
    gk = build_transform("cgcs2000", "cgcs2000-gk39")
    gk(lon1[:10], lat1[:10])
    from pyproj import Transformer

    plain = Transformer.from_crs(4490, 4527, always_xy=True, allow_ballpark=False)
    glon, glat = webmaps.wgs84_to_gcj02(lon1, lat1)
    rows = []

    def add(name, n, fn, target=None):
        rate, p = timed(fn, n)
        rows.append([name, f"{n:,}", f"{p['min']:.3f}", f"{p['p50']:.3f}", f"{rate / 1e6:.2f}",
                     "-" if target is None else (f">= {target} " + ("ok" if rate / 1e6 >= target else "MISSED"))])

    add("EPSG cgcs2000->cgcs2000-gk39 (crs transform, threaded)", n5, lambda: gk(lon5, lat5), 5.0)
    add("reference: plain pyproj, one call", n5, lambda: plain.transform(lon5, lat5))
    add("GCJ-02 forward", n1, lambda: webmaps.wgs84_to_gcj02(lon1, lat1))
    add("GCJ-02 exact inverse (fixed point)", n1, lambda: webmaps.gcj02_to_wgs84(glon, glat), 0.3)
    add("reference: naive inverse 2w - f(w)", n1, lambda: _naive_gcj02_to_wgs84(glon, glat))
    add("BD-09 -> CGCS2000 (exact)", n1, lambda: build_transform("bd09", "cgcs2000")(glon, glat))
    if not args.no_db:
        rate, p = bench_db(n1)
        rows.append(["DB migrate-db --execute, 1M points bj54->cgcs2000 bursa7 (backup+change+verify)", f"{n1:,}",
                     f"{p['min']:.3f}", f"{p['p50']:.3f}", f"{rate / 1e6:.2f}",
                     "<= 10 s " + ("ok" if p["min"] <= 10 else "MISSED")])
    text = table(["operation", "points", "best s", "median s", "M points/s", "target"], rows)
    print(text)
    if not args.no_record:
        record("crs: coordinate transforms and migration", command_line(), text,
               "EPSG figure: all cores via threads (pyproj releases the GIL); machine shared with other developers.")


if __name__ == "__main__":
    main()
