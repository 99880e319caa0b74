"""Reference tables kept in the process (config.processcache): an edit saved in this process is
seen at once, one made behind its back only after the cache's age, and an unknown division code
reloads the names."""

from __future__ import annotations

import pytest

from command import catalog
from command.models import DispatchRule
from geo import names
from geo.models import Street

pytestmark = pytest.mark.django_db


def test_a_saved_division_name_is_seen_at_once_and_a_new_code_reloads() -> None:
    street = Street.objects.get(code="110101001")
    before = names.division_names([street.code])[street.code]
    Street.objects.filter(code=street.code).update(name="改名街道")  # no signal: the cache holds
    assert names.division_names([street.code])[street.code] == before
    street.name = "又改名街道"
    street.save(update_fields=["name"])  # saved here: forgotten at once
    assert names.division_names([street.code])[street.code] == "又改名街道"
    names.NAMES.get()  # fresh, so a miss may not reload yet ...
    # Added behind the process's back (bulk_create sends no signal), like a load by another process.
    Street.objects.bulk_create([Street(code="110101999", name="新街道", district_id="110101", geom=street.geom)])
    assert names.division_names(["110101999"]) == {}
    names.NAMES._loaded_at -= names.MISS_RETRY_S + 1  # ... until MISS_RETRY_S has passed (no sleep)
    assert names.division_names(["110101999"]) == {"110101999": "新街道"}


def test_a_dispatch_rule_saved_here_applies_to_the_next_intake() -> None:
    assert catalog.rule_for("E0501", "110101", "110101001") is None
    rule = DispatchRule.objects.create(category_id="E0501", district_id="110101")
    assert catalog.rule_for("E0501", "110101", "110101001") == rule
    street_rule = DispatchRule.objects.create(category_id="E0501", street_id="110101001")
    assert catalog.rule_for("E0501", "110101", "110101001") == street_rule  # the most specific
    assert catalog.rule_for("E0501", "110101", "110101002") == rule
    street_rule.delete()
    assert catalog.rule_for("E0501", "110101", "110101001") == rule
