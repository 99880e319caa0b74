"""`python manage.py crs list|point|file|fit|migrate-db|verify`: the coordinate migration tool.

Bad input exits with code 2 and a one-line reason; a failed `verify` exits with 1.
The work is done in geo.crs (pure) and geo.migrate_db (database); this module only parses.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from geo.crs.systems import SYSTEMS, CrsError


def _progress(total: int, desc: str) -> tqdm:
    return tqdm(total=total, desc=desc, file=sys.stderr, disable=None, leave=False)


def _declared_srids() -> dict[tuple[str, str], int]:
    """(table, column) -> SRID of every geometry field the installed models declare."""
    from django.apps import apps
    from django.contrib.gis.db.models import GeometryField

    return {(m._meta.db_table, str(f.column)): f.srid for m in apps.get_models() for f in m._meta.concrete_fields
            if isinstance(f, GeometryField)}


class Command(BaseCommand):
    help = "Coordinate systems: list, convert points and files, fit parameters, migrate the database."
    # No system checks: their warnings would break the promise of one line on stderr.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="the named systems")

        p = sub.add_parser("point", help="convert one point; prints 'X Y'")
        self._systems(p)
        p.add_argument("x", type=float)
        p.add_argument("y", type=float)

        p = sub.add_parser("file", help="convert a Shapefile, GeoPackage, GeoJSON, KML or CSV")
        p.add_argument("input")
        p.add_argument("output")
        self._systems(p)
        p.add_argument("--x-col", default="x")
        p.add_argument("--y-col", default="y")
        p.add_argument("--encoding", help="the input's text encoding (e.g. GBK), overriding a Shapefile's .cpg or "
                                          "UTF-8 for CSV; the text must decode with it")
        p.add_argument("--geometry-only", action="store_true",
                       help="convert a Shapefile whose .dbf is missing (its attributes are lost)")
        p.add_argument("--overwrite", action="store_true")

        p = sub.add_parser("fit", help="fit a model on control point pairs; writes a parameter file")
        p.add_argument("pairs")
        p.add_argument("--model", required=True, choices=["helmert4", "bursa7", "affine", "poly2"])
        p.add_argument("--from", dest="source", required=True)
        p.add_argument("--to", dest="target", required=True)
        p.add_argument("--out", help="parameter file (default: PAIRS.MODEL.json)")
        p.add_argument("--report", help="report file: HTML if it ends in .html, else Markdown "
                                         "(default: PARAMS.md next to the parameter file)")
        p.add_argument("--check-every", type=int, default=5, help="without a role column, hold out every k-th point")

        p = sub.add_parser("migrate-db", help="transform every geometry column of the platform")
        p.add_argument("--to", dest="target", required=True)
        p.add_argument("--params")
        mode = p.add_mutually_exclusive_group(required=True)
        for m in ("dry-run", "execute", "verify", "rollback"):
            mode.add_argument(f"--{m}", dest="mode", action="store_const", const=m)
        p.add_argument("--tables", nargs="*", help="only these tables (default: every public.geo_* table)")
        p.add_argument("--tol", type=float, default=0.001, help="round-trip tolerance in metres")
        p.add_argument("--report", help="report file: HTML if it ends in .html, else Markdown")
        p.add_argument("--allow-live-writes", action="store_true",
                       help="--execute even though live ingest wrote into a migrated table in the last 10 minutes")

        p = sub.add_parser("verify", help="compare two files (A B), or a file with a table (A --table): same "
                                          "features, geometry within --tol")
        p.add_argument("a")
        p.add_argument("b", nargs="?")
        p.add_argument("--table", help="a platform table (public.geo_*) to compare file A with, key by key")
        p.add_argument("--column", default="geom", help="its geometry column (with --table)")
        p.add_argument("--key", default="code", help="the key column, in the file and in the table (with --table)")
        p.add_argument("--layer", help="the file's layer, if it has several (with --table)")
        p.add_argument("--tol", type=float, default=0.05, help="metres")
        p.add_argument("--encoding", help="the files' text encoding (Shapefile without a right .cpg, CSV), e.g. GBK")
        p.add_argument("--x-col", default="x")
        p.add_argument("--y-col", default="y")

    @staticmethod
    def _systems(p) -> None:  # type: ignore[no-untyped-def]
        p.add_argument("--from", dest="source", required=True)
        p.add_argument("--to", dest="target", required=True)
        p.add_argument("--params", help="parameter file (needed from Beijing 1954, Xian 1980 or local)")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        logging.getLogger("pyogrio").setLevel(logging.WARNING)  # "Created N records": not news on stderr
        try:
            getattr(self, "do_" + opts["action"].replace("-", "_"))(opts)
        except CrsError as e:
            raise CommandError(" ".join(str(e).split()), returncode=2) from None

    # --- subcommands ---------------------------------------------------------------------------

    def do_list(self, opts) -> None:  # type: ignore[no-untyped-def]
        for s in SYSTEMS.values():
            epsg = f"EPSG:{s.epsg}" if s.epsg else s.kind
            self.stdout.write(f"{s.alias:16} {epsg:10} {s.datum:9} {'projected' if s.projected else 'geographic':10} {s.name}")

    def _transform(self, opts):  # type: ignore[no-untyped-def]
        from geo.crs.models import load_params
        from geo.crs.transform import build_transform

        params = load_params(opts["params"]) if opts.get("params") else None
        return build_transform(opts["source"], opts["target"], params)

    def do_point(self, opts) -> None:  # type: ignore[no-untyped-def]
        t = self._transform(opts)
        x, y = t([opts["x"]], [opts["y"]])
        fmt = "{:.4f}" if t.target.projected else "{:.9f}"
        self.stdout.write(f"{fmt.format(x[0])} {fmt.format(y[0])}")

    def do_file(self, opts) -> None:  # type: ignore[no-untyped-def]
        from geo.crs import stream

        t = self._transform(opts)
        bar = tqdm(total=None, desc="features", unit=" features", unit_scale=True, file=sys.stderr,
                   disable=None, leave=False)
        with bar:
            done = stream.convert_file(opts["input"], opts["output"], t, x_col=opts["x_col"], y_col=opts["y_col"],
                                       encoding=opts["encoding"], geometry_only=opts["geometry_only"],
                                       overwrite=opts["overwrite"], progress=bar)
        for note in done.notes:
            self.stdout.write(f"note: {note}")
        self.stdout.write(f"{done.features} features in {done.layers} layer(s) written to {opts['output']}: "
                          f"{t.describe()}")

    def do_fit(self, opts) -> None:  # type: ignore[no-untyped-def]
        from geo.crs import fit, models, report

        points = fit.read_pairs(opts["pairs"], opts["check_every"])
        with _progress(len(points.ids), "3-sigma rejections") as bar:
            result = fit.fit(points, opts["model"], opts["source"], opts["target"], progress=bar)
        out = Path(opts["out"] or Path(opts["pairs"]).with_suffix(f".{opts['model']}.json"))
        doc = models.save_params(result.doc, out)
        rep = Path(opts["report"] or out.with_suffix(".md"))
        rep.write_text(report.fit_report_for(rep, doc, points), encoding="utf-8")
        st = doc["statistics"]
        self.stdout.write(
            f"{doc['model']} {doc['source']} -> {doc['target']}: used {st['n_used']}/{st['n_control']}, "
            f"rejected {st['rejected'] or 'none'}, sigma0 {st['sigma0_m']:.4f} m, check RMSE "
            f"{st['check']['rmse_m'] if st['check']['rmse_m'] is None else round(st['check']['rmse_m'], 4)} m; "
            f"wrote {out} and {rep}")
        for w in report.precision_warnings(doc):  # exit 0 (the file is written), but not quietly
            self.stderr.write(f"WARNING: {w}")

    def do_migrate_db(self, opts) -> None:  # type: ignore[no-untyped-def]
        from django.db import connection

        from geo import migrate_db
        from geo.crs import report

        connection.ensure_connection()
        summary = migrate_db.run(connection.connection, opts["mode"], opts["target"], opts["params"],
                                 tables=opts["tables"], tol_m=opts["tol"], progress=_progress,
                                 declared=_declared_srids(), allow_live_writes=opts["allow_live_writes"])
        text = report.migration_report(summary)
        for w in summary["warnings"]:
            self.stderr.write(f"WARNING: {w}")
        if opts["report"]:
            Path(opts["report"]).write_text(report.migration_report_for(opts["report"], summary), encoding="utf-8")
        self.stdout.write(text)
        if summary["outcome"].startswith("FAILED"):
            raise CommandError(summary["outcome"], returncode=1)

    def do_verify(self, opts) -> None:  # type: ignore[no-untyped-def]
        from geo.crs import files
        from geo.crs.compare import compare_datasets

        if opts["table"]:
            self._verify_table(opts)
            return
        if opts["b"] is None:
            raise CrsError("verify needs two files (A B) or a file and a table (A --table geo_...)")
        a, b = (files.read_dataset(f, opts["x_col"], opts["y_col"], files.text_encoding(f, opts["encoding"]))
                for f in (opts["a"], opts["b"]))
        problems, worst = compare_datasets(a, b, opts["tol"])
        if problems:
            raise CommandError(f"verify failed: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                               returncode=1)
        self.stdout.write(f"ok: same layers, features and attributes; max deviation {worst:.6f} m <= {opts['tol']} m")

    def _verify_table(self, opts) -> None:  # type: ignore[no-untyped-def]
        from django.db import connection

        from geo import verify_db
        from geo.crs import files

        if opts["b"] is not None:
            raise CrsError("verify takes one file with --table, not two")
        connection.ensure_connection()
        r = verify_db.run(connection.connection, opts["a"], opts["table"], opts["column"], opts["key"], opts["tol"],
                          x_col=opts["x_col"], y_col=opts["y_col"], layer=opts["layer"], encoding=files.text_encoding(opts["a"], opts["encoding"]))
        self.stdout.write("\n".join(r.lines()))
        if not r.ok:
            raise CommandError(f"verify failed: {r.summary()}", returncode=1)
