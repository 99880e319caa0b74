"""Coordinate-migration throughput: EPSG transform, GCJ-02 forward/inverse, database migration.

Usage: .venv/bin/python bench/crs.py [--no-db] [--no-record] [--file-only]
`--file-only` runs just `manage.py crs file` on a 1,000,000-point Shapefile (wall time and the
child's peak resident memory, from wait4), the figure behind the streamed conversion.
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


def bench_file(n: int) -> tuple[float, float, int]:
    """`manage.py crs file` as a user runs it (its own process): a Shapefile of n points with two
    attribute columns -> GeoPackage, CGCS2000 -> GK zone 39. Returns (seconds, peak RSS MiB, rc)."""
    import subprocess

    import geopandas as gpd
    import pyogrio
    import shapely

    root = Path(__file__).resolve().parent.parent
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.shp", Path(tmp) / "out.gpkg"
        g = gpd.GeoDataFrame({"id": np.arange(n), "name": [f"p{i}" for i in range(n)]},
                             geometry=shapely.points(rng.uniform(115.6, 117.3, n), rng.uniform(39.5, 40.9, n)),
                             crs="EPSG:4490")
        pyogrio.write_dataframe(g, src)
        del g
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "manage.py", "crs", "file", str(src), str(dst), "--from", "cgcs2000",
                                 "--to", "cgcs2000-gk39"], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        assert pyogrio.read_info(dst)["features"] == n
        return seconds, usage.ru_maxrss / 1024.0, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-db", action="store_true")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--file-only", action="store_true", help="only the `crs file` figure (about 30 s)")
    args = ap.parse_args()
    if args.file_only:
        n = 1_000_000
        seconds, rss, rc = bench_file(n)
        text = table(["operation", "points", "wall s", "peak RSS MiB", "exit"],
                     [["manage.py crs file in.shp out.gpkg cgcs2000 -> cgcs2000-gk39", f"{n:,}", f"{seconds:.1f}",
                       f"{rss:.0f}", rc]])
        print(text)
        if not args.no_record:
            record("crs file: 1,000,000-point Shapefile -> GeoPackage", command_line(), text,
                   "One process as a user runs it; peak RSS from wait4. Machine shared with other developers.")
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
