"""A user's jurisdiction and how it narrows a query.

Every collection that holds people, vehicles or ledgers passes through `Jurisdiction.q` or
`Jurisdiction.sql`, so scoping lives in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q


@dataclass(frozen=True)
class Jurisdiction:
    level: str  # "city" | "district" | "street" | "none"
    district: str | None = None
    street: str | None = None

    @classmethod
    def of(cls, user: Any) -> Jurisdiction:
        if user is None or not user.is_authenticated:
            return cls("none")
        profile = getattr(user, "profile", None)
        if profile is None:
            # Staff without a profile (a superuser made by createsuperuser) see the city.
            return cls("city") if user.is_superuser else cls("none")
        if profile.street_id:
            return cls("street", district=str(profile.street_id)[:6], street=str(profile.street_id))
        if profile.district_id:
            return cls("district", district=str(profile.district_id))
        return cls("city")

    def q(self, district_field: str = "district", street_field: str = "street") -> Q:
        """A Django filter: rows inside this jurisdiction."""
        if self.level == "city":
            return Q()
        if self.level == "district":
            return Q(**{f"{district_field}_id": self.district})
        if self.level == "street":
            return Q(**{f"{street_field}_id": self.street})
        return Q(pk__in=[])

    def sql(self, alias: str, district_col: str = "district_id", street_col: str = "street_id") -> tuple[str, list[str]]:
        """The same filter as SQL with bound parameters. Column names come from code, not input."""
        if self.level == "city":
            return "TRUE", []
        if self.level == "district":
            return f'{alias}."{district_col}" = %s', [self.district or ""]
        if self.level == "street":
            return f'{alias}."{street_col}" = %s', [self.street or ""]
        return "FALSE", []

    @property
    def label(self) -> str:
        return {"city": "city", "district": f"district {self.district}", "street": f"street {self.street}"}.get(
            self.level, "none")
