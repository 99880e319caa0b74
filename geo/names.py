"""Division names (GB/T 2260 code -> name) of the 16 districts and 349 streets, kept in the process:
every task the API returns carries its district's and street's names, and reading them per answer
was two statements of each dispatch action. Read whole (365 short rows), again after 5 minutes,
at once after a District or Street is saved here, and when a code is missing (a division added
since), at most every 10 s."""

from __future__ import annotations

from collections.abc import Iterable

from config.processcache import ProcessCache
from geo.models import District, Street

MISS_RETRY_S = 10.0


def _load() -> dict[str, str]:
    names = dict(District.objects.values_list("code", "name"))
    names.update(Street.objects.values_list("code", "name"))
    return names


NAMES = ProcessCache("geo.names", _load, max_age_s=300.0, models=(District, Street))


def division_names(codes: Iterable[str]) -> dict[str, str]:
    """Code -> name for the given district and street codes (unknown codes are left out)."""
    wanted = set(codes)
    names = NAMES.get(reload_if=lambda known: not wanted <= known.keys(), reload_after_s=MISS_RETRY_S)
    return {code: names[code] for code in wanted if code in names}
