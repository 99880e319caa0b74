"""KPIs equal values computed by hand on a small data set (in January 2030, which no other data
reaches), through /api/kpis, with the jurisdiction applied."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.gis.geos import Point

from command.models import Category, Task
from command.workdays import TZ
from tests.dispatch_support import Dongcheng, dongcheng  # noqa: F401

pytestmark = pytest.mark.django_db


def day(m: int, d: int, hours: float = 12.0) -> dt.datetime:
    year = 2029 if m == 12 else 2030
    return dt.datetime(year, m, d, tzinfo=TZ) + dt.timedelta(hours=hours)


def make(n: int, street: str, filed: dt.datetime, deadline: dt.datetime, *, accept_h: float | None = None,
         handled: dt.datetime | None = None, closed: dt.datetime | None = None, state: str = "dispatched",
         reworks: int = 0, extensions: int = 0) -> Task:
    dispatched = filed + dt.timedelta(hours=1)
    return Task.objects.create(
        number=f"KPI-{n}", state="closed" if closed else state, source="patrol", category=Category.objects.get(pk="E0501"),
        geom=Point(116.4, 39.91, srid=4490), district_id="110101", street_id=street, created_at=filed,
        updated_at=filed, filed_at=filed, dispatched_at=dispatched, deadline=deadline,
        accepted_at=None if accept_h is None else dispatched + dt.timedelta(hours=accept_h),
        handled_at=handled, closed_at=closed, reworks=reworks, extensions=extensions)


@pytest.fixture
def january(dongcheng: Dongcheng) -> Dongcheng:  # noqa: F811
    s1, s2 = "110101001", "110101002"
    make(1, s1, day(1, 2), day(1, 3), accept_h=0.5, handled=day(1, 3, 10), closed=day(1, 4))
    make(2, s1, day(1, 5), day(1, 6), accept_h=1.5, handled=day(1, 7), closed=day(1, 8), reworks=1)
    make(3, s1, day(1, 10), day(1, 12), accept_h=1.0, extensions=1)
    make(4, s1, day(1, 20), day(2, 3))
    make(5, s1, day(12, 28), day(1, 2), accept_h=9.0, handled=day(1, 1), closed=day(1, 2))
    make(6, s1, day(1, 14), day(1, 15), state="cancelled")
    make(7, s2, day(1, 3), day(1, 4), accept_h=1.0, handled=day(1, 4, 8), closed=day(1, 4, 9))
    return dongcheng


def kpis(d: Dongcheng, who: str, level: str) -> dict:
    response = d.api(who, "get", f"/api/kpis?start=2030-01-01&end=2030-01-31&level={level}")
    assert response.status_code == 200, response.content
    return response.json()


def test_district_kpis_equal_the_hand_count(january: Dongcheng) -> None:
    body = kpis(january, "dongcheng", "district")
    assert [row["key"] for row in body["items"]] == ["110101"]
    row = body["items"][0]
    assert row["name"] == "东城区"
    assert (row["filed"], row["due"], row["closed"], row["on_time"], row["reworked"], row["extended"]) == (6, 5, 4, 3, 1, 1)
    assert row["closure_rate"] == 0.8 and row["on_time_rate"] == 0.6
    assert row["rework_rate"] == 0.25 and row["extension_rate"] == 0.2
    assert row["hours_to_accept"] == pytest.approx(1.0)
    # 100 × (0.40 × 0.6 + 0.30 × 0.8 + 0.15 × (1 − 0.25) + 0.15 × (1 − 0.2)) = 71.25
    assert row["score"] == pytest.approx(71.25, abs=0.06)
    assert body["total"]["due"] == 5


def test_street_level_and_the_street_dispatchers_scope(january: Dongcheng) -> None:
    rows = {r["key"]: r for r in kpis(january, "dongcheng", "street")["items"]}
    assert (rows["110101001"]["filed"], rows["110101001"]["due"], rows["110101001"]["closed"],
            rows["110101001"]["on_time"]) == (5, 4, 3, 2)
    assert (rows["110101002"]["due"], rows["110101002"]["on_time"]) == (1, 1)
    own = kpis(january, "donghuamen", "district")
    assert own["total"]["due"] == 4 and own["total"]["filed"] == 5


def test_kpis_refuse_bad_periods_and_field_officers(january: Dongcheng) -> None:
    assert january.api("dongcheng", "get", "/api/kpis?start=2030-02-01&end=2030-01-01").status_code == 422
    assert january.api("dongcheng", "get", "/api/kpis?start=2030-01-01&end=2030-01-31&level=x").status_code == 422
    assert january.api("dongcheng", "get", "/api/kpis?start=nope&end=2030-01-31").status_code == 422
    assert january.api("officer1", "get", "/api/kpis?start=2030-01-01&end=2030-01-31").status_code == 403
