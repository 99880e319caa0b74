"""Deadlines in working hours on China's official calendar: public holidays and the adjusted
working days (调休) come from `chinesecalendar`, which follows the State Council's yearly notice.

A year the package does not know yet (the notice comes out in November or December) falls back to
Monday-Friday, and `calendar_known` says so, so a deadline computed that way can be flagged."""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

import chinese_calendar

log = logging.getLogger(__name__)

TZ = ZoneInfo("Asia/Shanghai")
# The working day of a Beijing government office: 9:00-12:00 and 13:30-17:30 (7 hours).
WORK_PERIODS = ((dt.time(9, 0), dt.time(12, 0)), (dt.time(13, 30), dt.time(17, 30)))
_warned: set[int] = set()


def calendar_known(day: dt.date) -> bool:
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        return False
    return True


def is_workday(day: dt.date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        if day.year not in _warned:
            _warned.add(day.year)
            log.warning("workdays: chinesecalendar has no data for %s; using Monday-Friday", day.year)
        return day.weekday() < 5


def add_working_hours(start: dt.datetime, hours: float) -> dt.datetime:
    """The moment `hours` working hours after `start` (aware), in Beijing time."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    remaining = dt.timedelta(hours=hours)
    local = start.astimezone(TZ)
    day = local.date()
    for _ in range(3660):  # ten years of days: far beyond any deadline, never an endless loop
        if is_workday(day):
            for begin, end in WORK_PERIODS:
                period_start = dt.datetime.combine(day, begin, TZ)
                period_end = dt.datetime.combine(day, end, TZ)
                if local >= period_end:
                    continue
                frm = max(local, period_start)
                available = period_end - frm
                if remaining <= available:
                    return frm + remaining
                remaining -= available
                local = period_end
        day += dt.timedelta(days=1)
        local = dt.datetime.combine(day, dt.time(0, 0), TZ)
    raise ValueError(f"{hours} working hours is beyond the calendar")


def working_hours_between(start: dt.datetime, end: dt.datetime) -> float:
    """Working hours from start to end (0 if end is not after start)."""
    if end <= start:
        return 0.0
    total = dt.timedelta()
    local_start, local_end = start.astimezone(TZ), end.astimezone(TZ)
    day = local_start.date()
    while day <= local_end.date():
        if is_workday(day):
            for begin, finish in WORK_PERIODS:
                a = max(local_start, dt.datetime.combine(day, begin, TZ))
                b = min(local_end, dt.datetime.combine(day, finish, TZ))
                if b > a:
                    total += b - a
        day += dt.timedelta(days=1)
    return total.total_seconds() / 3600
