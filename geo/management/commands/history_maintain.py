"""python manage.py history_maintain [--now ISO-TIME] [--list]: make the position history's daily
partitions ahead, empty its default partition, and drop the days past the retention
(geo.history.maintain; a job runner calls that function directly)."""

from __future__ import annotations

import json
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser

from geo import history


def _aware(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--now: not an ISO 8601 time: {text!r}", returncode=2) from None
    if at.tzinfo is None:
        raise CommandError("--now: give a time zone offset (e.g. 2026-12-03T00:00:00+08:00)", returncode=2)
    return at


class Command(BaseCommand):
    help = "Maintain the position history's partitions: create days ahead, drop expired days."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--now", type=str, default=None,
                            help="reference time, ISO 8601 with offset (default: the current time)")
        parser.add_argument("--list", action="store_true", help="then list the partitions and their bounds")

    def handle(self, *args: object, **options: object) -> None:
        now = _aware(str(options["now"])) if options["now"] else None
        try:
            report = history.maintain(now)
        except history.HistoryNotPartitioned as error:
            raise CommandError(str(error), returncode=2) from None
        except history.HistoryBusy as error:
            raise CommandError(f"{error}; run again", returncode=1) from None
        self.stdout.write(json.dumps(report.as_dict()))
        if options["list"]:
            for name, bounds in history.partitions():
                self.stdout.write(f"{name}\t{bounds}")
