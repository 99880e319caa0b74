"""Division names (GB/T 2260 code -> name) of the 16 districts and 349 streets, kept in the process:
every task the API returns carries its district's and street's names, and reading them per answer
was two statements of each dispatch action.

The table is read whole on first use (365 short rows), again after MAX_AGE_S, and at once when a
code is missing (a division added since) or a District or Street is saved in this process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from django.db.models.signals import post_delete, post_save

from geo.models import District, Street

MAX_AGE_S = 300.0
MISS_RETRY_S = 10.0  # an unknown code reloads the table at most this often

_lock = threading.Lock()
_names: dict[str, str] = {}
_loaded_at = float("-inf")


def _load() -> None:
    global _names, _loaded_at
    names = dict(District.objects.values_list("code", "name"))
    names.update(Street.objects.values_list("code", "name"))
    _names, _loaded_at = names, time.monotonic()


def division_names(codes: Iterable[str]) -> dict[str, str]:
    """Code -> name for the given district and street codes (unknown codes are left out)."""
    wanted = set(codes)
    with _lock:
        age = time.monotonic() - _loaded_at
        if age > MAX_AGE_S or (age > MISS_RETRY_S and not wanted <= _names.keys()):
            _load()
        names = _names
    return {code: names[code] for code in wanted if code in names}


def forget(**_: Any) -> None:
    global _loaded_at
    with _lock:
        _loaded_at = float("-inf")


for _model in (District, Street):
    post_save.connect(forget, sender=_model, dispatch_uid=f"geo.names.{_model.__name__}.save")
    post_delete.connect(forget, sender=_model, dispatch_uid=f"geo.names.{_model.__name__}.delete")
