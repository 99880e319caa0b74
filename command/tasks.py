"""Jobs of the dispatch domain on procrastinate, the PostgreSQL-backed job runner (no broker).
`make serve` and `make demo` start its worker as a process of its own
(`python manage.py procrastinate worker`); its periodic deferrer runs `sweep_deadlines` every
minute, and `seal_audit` every minute (audit entries a process wrote but died before sealing).
A missed minute is harmless: the sweep looks at the state of the tasks, not at events."""

from __future__ import annotations

import logging

from procrastinate.contrib.django import app

from command import audit
from command.deadlines import do_sweep

log = logging.getLogger(__name__)


@app.periodic(cron="* * * * *", periodic_id="sweep-deadlines")
@app.task(name="command.sweep_deadlines", queue="dispatch", queueing_lock="sweep-deadlines", pass_context=False)
def sweep_deadlines(timestamp: int) -> dict[str, int]:
    report = do_sweep()
    if report.reminded or report.escalated or report.overdue:
        log.info("sweep: %d reminded, %d escalated, %d overdue", len(report.reminded), len(report.escalated),
                 len(report.overdue))
    return {"reminded": len(report.reminded), "escalated": len(report.escalated), "overdue": len(report.overdue)}


@app.periodic(cron="* * * * *", periodic_id="seal-audit")
@app.task(name="command.seal_audit", queue="dispatch", queueing_lock="seal-audit", pass_context=False)
def seal_audit(timestamp: int) -> int:
    """Entries are sealed by the process that wrote them right after its commit; this catches
    those of a process that stopped in between."""
    return audit.seal()
