"""Jobs of the spatial core on the job runner (procrastinate): the position history's partitions
— days created ahead, expired days dropped (geo.history.maintain) — every hour."""

from __future__ import annotations

from procrastinate.contrib.django import app

from geo.history import maintain


@app.periodic(cron="17 * * * *", periodic_id="history-maintain")
@app.task(name="geo.history_maintain", queue="dispatch", queueing_lock="history-maintain", pass_context=False)
def history_maintain(timestamp: int) -> None:
    maintain()
