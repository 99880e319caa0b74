"""`Actor.tasks()` (the ORM's scope, for reads) and `Actor.task_scope_sql()` (its SQL twin, for the
actions' locked read in command.taskrows) select the same tasks, for every role: a commander, a
district and a street dispatcher, a district's verifier, a user with no role, the wall, a field officer
(assigned tasks and the ones they reported), the job runner."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from command.actor import Actor
from command.models import Assignment, Task
from tests.dispatch_support import STREET, Dongcheng, dongcheng, point_in_street  # noqa: F401

pytestmark = pytest.mark.django_db

OTHER_DISTRICT_STREET = "110102001"  # 西长安街街道, Xicheng


def sql_ids(actor: Actor, ids: list[int]) -> set[int]:
    scope, params = actor.task_scope_sql("t")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT t.id FROM command_task t WHERE t.id = ANY(%s) AND {scope}", [ids, *params])  # noqa: S608
        return {row[0] for row in cursor.fetchall()}


def test_the_sql_scope_is_the_orm_scope_for_every_role(dongcheng: Dongcheng) -> None:  # noqa: F811
    made = []
    for who, street in (("donghuamen", STREET), ("dongcheng", "110101002"), ("commander", OTHER_DISTRICT_STREET),
                        ("officer1", STREET), ("officer2", "110101002")):
        lon, lat = point_in_street(street)
        response = dongcheng.api(who, "post", "/api/tasks", {"lon": lon, "lat": lat, "category": "E0501",
                                                             "source": "patrol"})
        assert response.status_code == 201, response.content
        made.append(response.json()["id"])
    # One task assigned to officer1 (active), one that was (inactive): only the first is theirs.
    Assignment.objects.create(task_id=made[1], unit_kind="officer", unit_id=dongcheng.officer1.pk, device_id="x",
                              call_sign="x", assigned_at=Task.objects.get(pk=made[1]).created_at, active=True)
    Assignment.objects.create(task_id=made[2], unit_kind="officer", unit_id=dongcheng.officer1.pk, device_id="x",
                              call_sign="x", assigned_at=Task.objects.get(pk=made[2]).created_at, active=False)
    history = list(Task.objects.order_by("id").values_list("id", flat=True)[:300])
    ids = made + history
    users = get_user_model().objects
    actors = {name: Actor.of(users.get(username=name))
              for name in ("commander", "dongcheng", "donghuamen", "officer1", "officer2", "wall", "test_verifier")}
    actors["system"] = Actor.system()
    actors["nobody"] = Actor.of(users.create_user("scope_nobody"))
    seen = {}
    for name, actor in actors.items():
        orm = set(actor.tasks().filter(id__in=ids).values_list("id", flat=True))
        assert sql_ids(actor, ids) == orm, name
        seen[name] = orm
    # The comparison is not between two empty sets: each role sees what it should.
    assert set(made) <= seen["commander"] and set(made) <= seen["system"]
    assert {made[0], made[1]} <= seen["dongcheng"] and made[2] not in seen["dongcheng"]
    assert made[0] in seen["donghuamen"] and made[1] not in seen["donghuamen"]
    assert seen["officer1"] == {made[1], made[3]}  # assigned (active), and reported by them
    assert seen["officer2"] == {made[4]}
    assert {made[0], made[1]} <= seen["test_verifier"] and made[2] not in seen["test_verifier"]
    assert seen["nobody"] == set() and seen["wall"] == seen["commander"]
