"""python manage.py load_fixtures [--force] [--seed N]: the deterministic Beijing fixtures
(fixtures/generate), written with COPY in one transaction; a no-op when already loaded."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from fixtures.generate.load import load_fixtures


class Command(BaseCommand):
    help = "Generate the deterministic Beijing fixtures and load them (skipped when already up to date)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--force", action="store_true", help="reload even if the checksum matches")
        parser.add_argument("--seed", type=int, default=None,
                            help="random seed (default: env ONEMAP_FIXTURE_SEED, else 20231231)")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        verbosity = options["verbosity"]
        load_fixtures(seed=options["seed"], force=options["force"], verbosity=verbosity,
                      out=(lambda msg: self.stdout.write(msg)) if verbosity > 0 else None)
