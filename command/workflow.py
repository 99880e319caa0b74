"""The case loop (GB/T 30428, CJ/T 315) as one table: each action, the states it may be taken
from, the state it leads to, who may take it, and what the action needs. `command.actions` reads
this table; nothing else decides whether a transition is legal."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Role

# States
REPORTED = "reported"  # 信息采集: intake, not yet a case
FILED = "filed"  # 立案
DISPATCHED = "dispatched"  # 派遣: the deadline clock runs
ACCEPTED = "accepted"  # 签收
ON_SITE = "on_site"  # 到场
HANDLED = "handled"  # 处置反馈: waiting for verification
VERIFIED = "verified"  # 核查通过
CLOSED = "closed"  # 结案
CANCELLED = "cancelled"  # 作废 (with a reason)
MERGED = "merged"  # 合并 into another task (a duplicate)

STATES = (REPORTED, FILED, DISPATCHED, ACCEPTED, ON_SITE, HANDLED, VERIFIED, CLOSED, CANCELLED, MERGED)
OPEN_STATES = frozenset({REPORTED, FILED, DISPATCHED, ACCEPTED, ON_SITE, HANDLED, VERIFIED})
FINAL_STATES = frozenset({CLOSED, CANCELLED, MERGED})
# The unit is working on it: counts towards its workload, and its fixes are checked for presence.
WORKING_STATES = frozenset({DISPATCHED, ACCEPTED, ON_SITE})
STATE_LABELS = {
    REPORTED: "待立案", FILED: "已立案", DISPATCHED: "已派遣", ACCEPTED: "已签收", ON_SITE: "已到场",
    HANDLED: "待核查", VERIFIED: "核查通过", CLOSED: "已结案", CANCELLED: "已作废", MERGED: "已合并",
}

DISPATCHERS = frozenset({Role.CITY_COMMANDER, Role.DISTRICT_DISPATCHER, Role.STREET_DISPATCHER})
FIELD = frozenset({Role.FIELD_OFFICER})
VERIFIERS = frozenset({Role.VERIFIER}) | DISPATCHERS

# Who, beyond the role, may act: anyone in the jurisdiction, only an assigned unit, or anyone in
# the jurisdiction who did not handle the task (verification by a different person).
IN_JURISDICTION, ASSIGNEE, NOT_HANDLER = "in_jurisdiction", "assignee", "not_handler"


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[str]
    target: str | None  # None: the state does not change (an extension)
    roles: frozenset[str]
    who: str = IN_JURISDICTION
    needs_reason: bool = False
    label: str = ""


TRANSITIONS: tuple[Transition, ...] = (
    Transition("file", frozenset({REPORTED}), FILED, DISPATCHERS, label="立案 file"),
    Transition("dispatch", frozenset({FILED}), DISPATCHED, DISPATCHERS, label="派遣 dispatch"),
    Transition("reassign", frozenset({DISPATCHED, ACCEPTED}), DISPATCHED, DISPATCHERS, needs_reason=True,
               label="改派 reassign"),
    Transition("accept", frozenset({DISPATCHED}), ACCEPTED, FIELD, who=ASSIGNEE, label="签收 accept"),
    Transition("arrive", frozenset({ACCEPTED}), ON_SITE, FIELD, who=ASSIGNEE, label="到场 arrive"),
    Transition("feedback", frozenset({ON_SITE}), HANDLED, FIELD, who=ASSIGNEE, label="处置反馈 feedback"),
    Transition("verify", frozenset({HANDLED}), VERIFIED, VERIFIERS, who=NOT_HANDLER, label="核查通过 verify"),
    Transition("rework", frozenset({HANDLED}), DISPATCHED, VERIFIERS, who=NOT_HANDLER, needs_reason=True,
               label="返工 rework"),
    Transition("close", frozenset({VERIFIED}), CLOSED, DISPATCHERS, label="结案 close"),
    Transition("extend", frozenset({DISPATCHED, ACCEPTED, ON_SITE}), None, DISPATCHERS, needs_reason=True,
               label="延期 extend"),
    Transition("cancel", frozenset({REPORTED, FILED, DISPATCHED, ACCEPTED, ON_SITE}), CANCELLED, DISPATCHERS,
               needs_reason=True, label="作废 cancel"),
    Transition("merge", frozenset({REPORTED, FILED}), MERGED, DISPATCHERS, label="合并 merge"),
)
BY_ACTION: dict[str, Transition] = {t.action: t for t in TRANSITIONS}
ACTIONS = tuple(BY_ACTION)


def allowed_actions(state: str, role: str | None) -> list[str]:
    """The actions a role may take from a state (before the per-task checks of `who`)."""
    return [t.action for t in TRANSITIONS if state in t.sources and (role is None or role in t.roles)]
