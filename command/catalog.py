"""The classification and the auto-dispatch rules, kept in the process (config.processcache):
every intake reads its category and the rules of that category, and reading them was two
statements of every create (bench/dispatch.py). Both are small tables a city edits in the admin;
they are read again after 10 s, and at once after a save or delete in this process."""

from __future__ import annotations

from command.models import Category, DispatchRule
from config.processcache import ProcessCache


def _load() -> tuple[dict[str, Category], dict[str, list[DispatchRule]]]:
    categories = {c.code: c for c in Category.objects.filter(active=True)}
    rules: dict[str, list[DispatchRule]] = {}
    for rule in DispatchRule.objects.filter(enabled=True).order_by("id"):
        rules.setdefault(rule.category_id, []).append(rule)
    return categories, rules


CATALOG = ProcessCache("command.catalog", _load, max_age_s=10.0, models=(Category, DispatchRule))


def active_category(code: str) -> Category | None:
    return CATALOG.get()[0].get(code)


def rule_for(category: str, district: str, street: str | None) -> DispatchRule | None:
    """The most specific enabled rule of the category that holds at the place: a street's, then
    a district's, then the city's (no area); the oldest among equals."""
    holding = [r for r in CATALOG.get()[1].get(category, [])
               if r.street_id in (None, street) and r.district_id in (None, district)]
    holding.sort(key=lambda r: (r.street_id is None, r.district_id is None, r.pk))
    return holding[0] if holding else None


def forget() -> None:
    CATALOG.forget()
