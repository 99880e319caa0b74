"""The three modes of the one map, declared in one place: who may open each, what it loads, how
its map looks. `/` sends each role to its mode (HOME_BY_ROLE)."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Role


@dataclass(frozen=True)
class Mode:
    name: str
    template: str
    roles: frozenset[str]  # profile roles that may open it; a superuser without a profile may open any
    theme: str  # "light" | "dark": the palette frontend/static/frontend/theme.js applies to the style
    script: str  # the ES module that starts the mode
    live: bool = True  # subscribes to /ws/map


DISPATCHERS = frozenset({Role.CITY_COMMANDER, Role.DISTRICT_DISPATCHER, Role.STREET_DISPATCHER})

MODES: dict[str, Mode] = {
    mode.name: mode for mode in (
        Mode("wall", "frontend/wall.html", DISPATCHERS | {Role.WALL_DISPLAY}, "dark", "frontend/wall.js"),
        Mode("console", "frontend/console.html", DISPATCHERS | {Role.VERIFIER}, "light", "frontend/console.js"),
        # The phone sees its own position and pushes; the other units would cost it bandwidth.
        Mode("field", "frontend/field.html", frozenset({Role.FIELD_OFFICER}), "light", "frontend/field.js",
             live=False),
    )
}

HOME_BY_ROLE: dict[str, str] = {
    Role.WALL_DISPLAY: "wall",
    Role.FIELD_OFFICER: "field",
    Role.CITY_COMMANDER: "console",
    Role.DISTRICT_DISPATCHER: "console",
    Role.STREET_DISPATCHER: "console",
    Role.VERIFIER: "console",
}
SUPERUSER_HOME = "console"


def role_of(user: object) -> str | None:
    profile = getattr(user, "profile", None)
    return profile.role if profile is not None else None


def may_open(user: object, mode: Mode) -> bool:
    role = role_of(user)
    if role is None:
        return bool(getattr(user, "is_superuser", False)) and mode.name != "field"
    return role in mode.roles


def home_mode(user: object) -> str | None:
    role = role_of(user)
    if role is None:
        return SUPERUSER_HOME if getattr(user, "is_superuser", False) else None
    return HOME_BY_ROLE.get(role)
