"""python manage.py refresh_tiles [--force]: rebuild the low-zoom tables (camera and hotspot
clusters, simplified grid cells) that are behind their source. `make setup` runs it after the
fixtures, so the first low-zoom tile after a load does not pay for the rebuild."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from tiles.derived import derived_layers, rebuild


class Command(BaseCommand):
    help = "Rebuild the tile clusters and simplified polygons that are behind their source data."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--force", action="store_true", help="rebuild even if up to date")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        for layer in derived_layers():
            started = time.perf_counter()
            rebuilt = rebuild(layer, force=options["force"])
            if options["verbosity"] > 0:
                what = f"rebuilt in {time.perf_counter() - started:.1f} s" if rebuilt else "up to date"
                self.stdout.write(f"tiles: {layer.id} ({layer.low_zoom}) {what}")
