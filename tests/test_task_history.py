"""The year of dispatch history in the fixtures (fixtures/generate/task_*.py), as loaded by
tests/conftest.py: size, reproducibility, complete and ordered timelines, states that agree with
the timestamps, places that agree with the point, deadlines in working hours, assignments to the
street's own officers, links to the complaints and hotspots, and KPIs for every district."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection

from command import kpis
from command.workdays import add_working_hours
from fixtures.generate import generate, seed_from_env
from fixtures.generate.clock import reference_time
from fixtures.generate.copytext import stamps
from fixtures.generate.task_load import HISTORY_NAME
from tests.sql_support import rows, scalar

pytestmark = pytest.mark.django_db

CORE = "create,file,dispatch,accept,arrive,feedback(,rework,accept,arrive,feedback)*,verify,close"


@pytest.fixture(scope="module")
def block(django_db_setup, django_db_blocker) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """The history's block of task ids."""
    with django_db_blocker.unblock():
        counts = history_counts()
    return counts["first_id"], counts["last_id"]


def history_counts() -> dict[str, int]:
    from geo.models import FixtureLoad

    return FixtureLoad.objects.get(name=HISTORY_NAME).counts  # type: ignore[no-any-return]


HISTORY = "(SELECT * FROM command_task WHERE id BETWEEN %s AND %s)"


def test_size_and_record(block: tuple[int, int]) -> None:
    first, last = block
    counts = history_counts()
    n = scalar("SELECT count(*) FROM command_task WHERE id BETWEEN %s AND %s", [first, last])
    assert n == last - first + 1 == counts["command_task"] >= 200_000
    events = scalar("SELECT count(*) FROM command_taskevent WHERE task_id BETWEEN %s AND %s", [first, last])
    assert events == counts["command_taskevent"] > 8 * n
    # Live tasks get ids (and so numbers) after the history's.
    assert scalar("SELECT last_value FROM command_task_id_seq") >= last
    bad = scalar(f"SELECT count(*) FROM {HISTORY} t WHERE number <> 'T' || extract(year FROM created_at"
                 " AT TIME ZONE 'Asia/Shanghai') || '-' || lpad(id::text, 7, '0')", [first, last])
    assert bad == 0
    # The history has no audit entries: the chain starts with the first live action. (Matched by
    # task number too: a reused test database keeps entries about live tasks of an earlier load,
    # which had these ids and other numbers.)
    assert scalar(f"SELECT count(*) FROM command_auditentry a JOIN {HISTORY} t ON a.object_id = t.id::text"
                  " AND a.after->>'number' = t.number WHERE a.object_type = 'task'", [first, last]) == 0


def test_proportions_vary_by_district(block: tuple[int, int]) -> None:
    states = dict(rows(f"SELECT state, count(*) FROM {HISTORY} t GROUP BY 1", list(block)))
    total = sum(states.values())
    assert states["closed"] / total > 0.9
    assert 0.01 < states["cancelled"] / total < 0.05 and states["merged"] > 500
    assert sum(states.get(s, 0) for s in ("dispatched", "accepted", "on_site", "handled", "verified")) > 100
    sources = dict(rows(f"SELECT source, count(*) FROM {HISTORY} t GROUP BY 1", list(block)))
    assert set(sources) == {"complaint", "patrol", "video", "ledger", "assigned"}
    per_district = rows(f"""SELECT district_id, avg((reworks > 0)::int), avg((extensions > 0)::int), avg(overdue::int),
                                   avg(presence_flag::int), avg((escalation <> 'street')::int)
                            FROM {HISTORY} t GROUP BY 1""", list(block))
    assert len(per_district) == 16
    for column in range(1, 6):
        values = [float(r[column]) for r in per_district]
        assert min(values) > 0 and max(values) > 1.5 * min(values), column


def test_closed_tasks_have_the_full_timeline_in_order(block: tuple[int, int]) -> None:
    bad = scalar(f"""SELECT count(*) FROM (
        SELECT t.id, string_agg(e.action, ',' ORDER BY e.at, e.id)
                     FILTER (WHERE e.action NOT IN ('escalate', 'extend')) AS steps
        FROM {HISTORY} t JOIN command_taskevent e ON e.task_id = t.id WHERE t.state = 'closed' GROUP BY t.id) s
        WHERE steps !~ %s""", [*block, f"^{CORE}$"])
    assert bad == 0
    # Every event starts from the state the one before left (the timeline is one chain).
    broken = scalar("""SELECT count(*) FROM (
        SELECT from_state, lag(to_state, 1, '') OVER (PARTITION BY task_id ORDER BY at, id) AS before,
               at, lag(at) OVER (PARTITION BY task_id ORDER BY at, id) AS at_before
        FROM command_taskevent WHERE task_id BETWEEN %s AND %s) e
        WHERE from_state <> before OR at <= at_before""", list(block))
    assert broken == 0
    # The task's state is where its last event left it, and version counts its events.
    off = scalar(f"""SELECT count(*) FROM {HISTORY} t JOIN LATERAL (
        SELECT to_state, count(*) OVER () n FROM command_taskevent WHERE task_id = t.id ORDER BY at DESC, id DESC
        LIMIT 1) last ON TRUE WHERE mod(t.id, 10) = 0 AND (last.to_state <> t.state OR last.n <> t.version)""",
                 list(block))
    assert off == 0


def test_timestamps_agree_with_states(block: tuple[int, int]) -> None:
    chain = ["created_at", "filed_at", "dispatched_at", "accepted_at", "arrived_at", "handled_at", "verified_at",
             "closed_at"]
    order = " AND ".join(f"{b} >= {a}" for a, b in zip(chain, chain[1:], strict=False))
    assert scalar(f"SELECT count(*) FROM {HISTORY} t WHERE state = 'closed' AND NOT ({order})", list(block)) == 0
    expected = {  # state: (timestamps set, timestamps NULL)
        "reported": ([], chain[1:]), "filed": (chain[:2], chain[2:]), "dispatched": (chain[:3], chain[5:]),
        "accepted": (chain[:4], chain[5:]), "on_site": (chain[:5], chain[5:]), "handled": (chain[:6], chain[6:]),
        "verified": (chain[:7], chain[7:]), "merged": ([], chain[1:]),
    }
    for state, (present, absent) in expected.items():
        cond = " OR ".join([f"{c} IS NULL" for c in present] + [f"{c} IS NOT NULL" for c in absent])
        assert scalar(f"SELECT count(*) FROM {HISTORY} t WHERE state = %s AND ({cond})", [*block, state]) == 0, state
    assert scalar(f"SELECT count(*) FROM {HISTORY} t WHERE (state = 'merged') <> (merged_into_id IS NOT NULL)",
                  list(block)) == 0
    assert scalar(f"""SELECT count(*) FROM {HISTORY} t JOIN command_task m ON m.id = t.merged_into_id
                      WHERE m.created_at > t.created_at OR m.category_id <> t.category_id""", list(block)) == 0
    # Overdue: the work ended (or is still running at the reference time) after the deadline.
    ref = reference_time(seed_from_env())
    assert scalar(f"""SELECT count(*) FROM {HISTORY} t WHERE dispatched_at IS NOT NULL AND overdue <>
                      (coalesce(handled_at, (SELECT max(at) FROM command_taskevent WHERE task_id = t.id
                                             AND action = 'cancel'), %s) > deadline)""", [*block, ref]) == 0
    assert scalar(f"SELECT max(updated_at) FROM {HISTORY} t", list(block)) <= ref


def test_places_agree_with_the_point(block: tuple[int, int]) -> None:
    bad = scalar(f"""SELECT count(*) FROM {HISTORY} t JOIN geo_gridcell g ON g.code = t.grid_cell_id
                     WHERE mod(t.id, 25) = 0 AND (NOT ST_Covers(g.geom, t.geom) OR g.community_id <> t.community_id
                           OR g.street_id <> t.street_id OR g.district_id <> t.district_id)""", list(block))
    assert bad == 0
    assert scalar(f"SELECT count(*) FROM {HISTORY} t WHERE grid_cell_id IS NULL OR geom_3857 IS NULL",
                  list(block)) == 0
    # Snapped hotspots are of the class's hotspot category, within 150 m, open at intake.
    bad = scalar(f"""SELECT count(*) FROM {HISTORY} t JOIN geo_hotspotpoint h ON h.id = t.hotspot_id
                     JOIN command_category c ON c.code = t.category_id
                     WHERE h.category <> c.hotspot_category OR ST_DistanceSphere(h.geom, t.geom) > 150.01
                        OR h.opened_at > t.created_at""", list(block))
    assert bad == 0
    assert scalar(f"SELECT count(*) FROM {HISTORY} t WHERE hotspot_id IS NOT NULL", list(block)) > 20_000


def test_tasks_from_complaints_and_cases_match_them(block: tuple[int, int]) -> None:
    for table, key, moment in (("geo_complaint", "complaint_id", "received_at"),
                               ("geo_enforcementcase", "case_id", "occurred_at")):
        bad, n = rows(f"""SELECT count(*) FILTER (WHERE NOT ST_Equals(o.geom, t.geom) OR o.grid_cell_id <> t.grid_cell_id
                                                  OR t.created_at < o.{moment}
                                                  OR t.created_at > o.{moment} + interval '1 hour'
                                                  OR c.hotspot_category <> o.category), count(*)
                          FROM {HISTORY} t JOIN command_taskevent e ON e.task_id = t.id AND e.action = 'create'
                          JOIN {table} o ON o.id = (e.data ->> %s)::bigint
                          JOIN command_category c ON c.code = t.category_id""", [*block, key])[0]
        assert bad == 0 and n > 20_000, table
    assert scalar(f"""SELECT count(*) FROM {HISTORY} t JOIN command_taskevent e ON e.task_id = t.id
                      AND e.action = 'create' JOIN geo_enforcementcase o ON o.id = (e.data ->> 'case_id')::bigint
                      WHERE (t.source = 'video') <> o.off_site""", list(block)) == 0


def test_deadlines_in_working_hours(block: tuple[int, int]) -> None:
    plain = rows(f"""SELECT t.dispatched_at, c.deadline_hours, t.deadline FROM {HISTORY} t
                     JOIN command_category c ON c.code = t.category_id
                     WHERE t.extensions = 0 AND t.dispatched_at IS NOT NULL AND mod(t.id, 997) = 0""", list(block))
    assert len(plain) > 150
    for dispatched, hours, deadline in plain:
        assert add_working_hours(dispatched, hours) == deadline
    extended = rows(f"""SELECT (e.data ->> 'old_deadline')::timestamptz, (e.data ->> 'hours')::int, t.deadline
                        FROM {HISTORY} t JOIN command_taskevent e ON e.task_id = t.id AND e.action = 'extend'
                        WHERE mod(t.id, 53) = 0""", list(block))
    assert len(extended) > 50
    for old, hours, deadline in extended:
        assert add_working_hours(old, hours) == deadline


def test_assignments_go_to_the_streets_own_units(block: tuple[int, int]) -> None:
    bad = scalar(f"""SELECT count(*) FROM command_assignment a JOIN {HISTORY} t ON t.id = a.task_id
                     LEFT JOIN geo_officer o ON a.unit_kind = 'officer' AND o.id = a.unit_id
                     LEFT JOIN geo_vehicle v ON a.unit_kind = 'vehicle' AND v.id = a.unit_id
                     WHERE coalesce(o.street_id, v.street_id) IS DISTINCT FROM t.street_id
                        OR coalesce(o.device_id, v.device_id) <> a.device_id OR a.push_id IS NOT NULL
                        OR a.assigned_at <> t.dispatched_at""", list(block))
    assert bad == 0
    assert scalar(f"""SELECT count(*) FROM {HISTORY} t WHERE (dispatched_at IS NOT NULL) <> EXISTS
                      (SELECT 1 FROM command_assignment a WHERE a.task_id = t.id AND a.unit_kind = 'officer')""",
                  list(block)) == 0
    # The lowest-id officer of each street (the demo accounts' phones) has no history.
    assert scalar("""SELECT count(*) FROM command_assignment a WHERE a.unit_kind = 'officer' AND a.unit_id IN
                     (SELECT min(id) FROM geo_officer GROUP BY street_id)""") == 0
    assert scalar("SELECT count(*) FROM command_assignment WHERE recommended_rank <> 1 AND override_reason = ''"
                  " AND unit_kind = 'officer'") == 0


def test_kpis_of_a_month_for_every_district() -> None:
    ref = reference_time(seed_from_env()).date()
    end = ref.replace(day=1) - dt.timedelta(days=1)
    start = end.replace(day=1)  # the last full month before the reference
    rows_ = kpis.compute("district", start, end)
    assert len(rows_) == 16
    for row in rows_:
        assert row["filed"] > 100 and row["due"] > 100 and row["closed"] > 0.9 * row["due"], row
        assert 0.6 < row["on_time_rate"] < 1 and 0 < row["rework_rate"] < 0.4 and row["extension_rate"] < 0.2, row
        assert 0 < row["hours_to_accept"] < 2 and row["hours_to_arrive"] > row["hours_to_accept"], row
        assert 60 < row["score"] < 100, row
    scores = [r["score"] for r in rows_]
    assert max(scores) - min(scores) > 3
    streets = kpis.compute("street", start, end)
    assert len(streets) > 300 and len({r["score"] for r in streets}) > 100


def test_the_database_holds_what_the_generator_makes(block: tuple[int, int]) -> None:
    """Reproducible: the generator run again in this process gives the loaded rows (a digest of
    every task and of a sample of events)."""
    history = generate(seed_from_env()).history
    assert history is not None
    first, _ = block
    t = history.tasks
    mem = hashlib.sha256()
    columns = [t["state"], t["category_id"], t["grid_cell_id"], stamps(t["created_at"]), stamps(t["closed_at"]),
               stamps(t["deadline"]), t["reworks"].astype(str), t["extensions"].astype(str)]
    mem.update("\n".join("|".join(map(str, r)) for r in zip(*[np.asarray(c).tolist() for c in columns],
                                                              strict=True)).encode())
    db = hashlib.sha256()
    db_rows = rows("""SELECT state, category_id, grid_cell_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00"'),
                             coalesce(to_char(closed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00"'), '\\N'),
                             coalesce(to_char(deadline AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00"'), '\\N'),
                             reworks::text, extensions::text
                      FROM command_task WHERE id BETWEEN %s AND %s ORDER BY id""", list(block))
    db.update("\n".join("|".join(r) for r in db_rows).encode())
    assert db.hexdigest() == mem.hexdigest()
    sample = np.arange(0, len(history.events["task"]), 1009)
    e = history.events
    expected = [(int(e["task"][i]) + first, str(e["action"][i]), str(e["actor_name"][i])) for i in sample]
    got = rows("""SELECT task_id, action, actor_name FROM (SELECT task_id, action, actor_name,
                         row_number() OVER (ORDER BY task_id, at, id) - 1 AS k
                  FROM command_taskevent WHERE task_id BETWEEN %s AND %s) e WHERE mod(k, 1009) = 0 ORDER BY k""",
               list(block))
    assert got == expected


def test_a_second_load_keeps_the_history(block: tuple[int, int]) -> None:
    before = rows("SELECT checksum, loaded_at, counts FROM geo_fixtureload WHERE name = %s", [HISTORY_NAME])
    call_command("load_fixtures", verbosity=0)
    assert rows("SELECT checksum, loaded_at, counts FROM geo_fixtureload WHERE name = %s", [HISTORY_NAME]) == before


def test_a_reload_keeps_live_tasks_and_reuses_the_block(block: tuple[int, int]) -> None:
    """Clearing the history before a reload removes the block (with its events and assignments)
    and nothing else; the next load takes the same block, so live tasks keep their ids. (Run inside
    the test's transaction: the DDL and the deletes roll back with it.)"""
    from fixtures.generate.task_load import choose_base, clear_history, drop_foreign_keys, restore_foreign_keys

    first, last = block
    live = last + 1000
    connection.ensure_connection()
    with connection.connection.cursor() as cur:
        keys = drop_foreign_keys(cur)  # first: ALTER TABLE refuses a table with pending key checks
        # A live task (a copy of a history task under a new id) with one event of its own.
        cur.execute("""INSERT INTO command_task (id, number, state, source, category_id, description, address, geom,
                           grid_cell_id, community_id, street_id, district_id, created_at, overdue, escalation,
                           reworks, extensions, version, updated_at)
                       SELECT %s, 'T2026-LIVE', 'reported', source, category_id, description, address, geom,
                           grid_cell_id, community_id, street_id, district_id, now(), false, 'street', 0, 0, 1, now()
                       FROM command_task WHERE id = %s""", [live, first])
        cur.execute("INSERT INTO command_taskevent (task_id, action, from_state, to_state, actor_name, at, reason, data)"
                    " VALUES (%s, 'create', '', 'reported', 'test', now(), '', '{}')", [live])
        assert clear_history(cur) == (first, last)
        assert choose_base(cur, last - first + 1, (first, last)) == first - 1
        restore_foreign_keys(cur, keys)
    assert scalar("SELECT array_agg(id) FROM command_task") == [live]
    assert scalar("SELECT array_agg(DISTINCT task_id) FROM command_taskevent") == [live]
    assert scalar("SELECT count(*) FROM command_assignment WHERE task_id BETWEEN %s AND %s", list(block)) == 0
