"""Small reference tables kept in the process (division names, the classification, dispatch
rules): read whole on first use, again after `max_age_s`, and at once after a save or delete of
one of their models in this process (an edit in the admin holds at once in the worker that served
it, and within `max_age_s` in the others)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.db.models import Model
from django.db.models.signals import post_delete, post_save

T = TypeVar("T")


class ProcessCache(Generic[T]):
    def __init__(self, name: str, load: Callable[[], T], max_age_s: float, models: tuple[type[Model], ...]) -> None:
        self._load = load
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._value: T | None = None
        self._loaded_at = float("-inf")
        for model in models:
            post_save.connect(self.forget, sender=model, dispatch_uid=f"{name}.{model.__name__}.save", weak=False)
            post_delete.connect(self.forget, sender=model, dispatch_uid=f"{name}.{model.__name__}.delete", weak=False)

    def get(self, reload_if: Callable[[T], bool] | None = None, reload_after_s: float = 0.0) -> T:
        """The value; read again if it is older than max_age_s, or if `reload_if(value)` holds
        and it is older than `reload_after_s` (say, a code it does not know yet)."""
        with self._lock:
            age = time.monotonic() - self._loaded_at
            if (self._value is None or age > self.max_age_s
                    or (reload_if is not None and age > reload_after_s and reload_if(self._value))):
                self._value, self._loaded_at = self._load(), time.monotonic()
            return self._value

    def forget(self, **_: Any) -> None:
        with self._lock:
            self._loaded_at = float("-inf")
            self._value = None
