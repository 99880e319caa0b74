"""python manage.py audit verify — walk the hash-chained audit log (command.audit) and report any
entry that was altered, removed or inserted. Exit 0: intact; 1: tampering found; 2: bad usage."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from command import audit
from command.models import AuditEntry


class Command(BaseCommand):
    help = "Verify the audit log's hash chain: altered, removed or inserted entries are reported."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("what", choices=["verify"], help="verify: check the whole chain")

    def handle(self, *args: Any, **options: Any) -> None:
        total = AuditEntry.objects.count()
        findings: list[audit.Finding] = []
        for item in audit.verify():
            if isinstance(item, int):
                if options["verbosity"] >= 1 and total > 20_000:
                    self.stderr.write(f"audit: {item:,} of {total:,} entries checked")
            else:
                findings.append(item)
                self.stdout.write(f"entry {item.entry_id}: {item.problem} — {item.detail}")
        if findings:
            self.stderr.write(self.style.ERROR(f"audit: {len(findings)} problem(s) in {total:,} entries"))
            sys.exit(1)
        self.stdout.write(f"audit: {total:,} entries, chain intact")
