"""The classification and the auto-dispatch rules, kept in the process: every intake reads its
category and the rules of that category, and reading them was two statements of every create
(bench/dispatch.py). Both are small tables a city edits in the admin.

They are read whole on first use, again after MAX_AGE_S, and at once when a Category or a
DispatchRule is saved or deleted in this process (so an edit in the admin holds at once in the
worker that served it, and within MAX_AGE_S in the others)."""

from __future__ import annotations

import threading
import time
from typing import Any

from django.db.models.signals import post_delete, post_save

from command.models import Category, DispatchRule

MAX_AGE_S = 10.0

_lock = threading.Lock()
_categories: dict[str, Category] = {}
_rules: dict[str, list[DispatchRule]] = {}
_loaded_at = float("-inf")


def _fresh() -> tuple[dict[str, Category], dict[str, list[DispatchRule]]]:
    global _categories, _rules, _loaded_at
    with _lock:
        if time.monotonic() - _loaded_at > MAX_AGE_S:
            categories = {c.code: c for c in Category.objects.filter(active=True)}
            rules: dict[str, list[DispatchRule]] = {}
            for rule in DispatchRule.objects.filter(enabled=True).order_by("id"):
                rules.setdefault(rule.category_id, []).append(rule)
            _categories, _rules, _loaded_at = categories, rules, time.monotonic()
        return _categories, _rules


def active_category(code: str) -> Category | None:
    return _fresh()[0].get(code)


def rule_for(category: str, district: str, street: str | None) -> DispatchRule | None:
    """The most specific enabled rule of the category that holds at the place: a street's, then
    a district's, then the city's (no area); the oldest among equals."""
    holding = [r for r in _fresh()[1].get(category, [])
               if r.street_id in (None, street) and r.district_id in (None, district)]
    holding.sort(key=lambda r: (r.street_id is None, r.district_id is None, r.pk))
    return holding[0] if holding else None


def forget(**_: Any) -> None:
    global _loaded_at
    with _lock:
        _loaded_at = float("-inf")


for _model in (Category, DispatchRule):
    post_save.connect(forget, sender=_model, dispatch_uid=f"command.catalog.{_model.__name__}.save")
    post_delete.connect(forget, sender=_model, dispatch_uid=f"command.catalog.{_model.__name__}.delete")
