"""python manage.py create_demo_accounts — one account per role for demos and tests.

Idempotent: a second run resets the same users to the same state (password included). The
password comes from ONEMAP_DEMO_PASSWORD (default "onemap-demo")."""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.jurisdiction import Jurisdiction
from accounts.models import Profile, Role
from geo.models import District, Officer, Street

DEFAULT_PASSWORD = "onemap-demo"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    first_name: str
    district: str | None = None
    street: str | None = None
    # Field officers carry the phone of an Officer row in their street, when one exists.
    link_officer: bool = False


DEMO_ACCOUNTS = [
    DemoAccount("commander", Role.CITY_COMMANDER, "市指挥中心"),
    DemoAccount("dongcheng", Role.DISTRICT_DISPATCHER, "东城区调度", district="110101"),
    DemoAccount("donghuamen", Role.STREET_DISPATCHER, "东华门街道调度", district="110101", street="110101001"),
    DemoAccount("officer1", Role.FIELD_OFFICER, "执法队员一", district="110101", street="110101001",
                link_officer=True),
    DemoAccount("officer2", Role.FIELD_OFFICER, "执法队员二", district="110101", street="110101002",
                link_officer=True),
    DemoAccount("wall", Role.WALL_DISPLAY, "指挥大屏"),
    DemoAccount("verifier", Role.VERIFIER, "东城区核查员", district="110101"),
]
ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = "Create or reset the demo accounts (one per role) and an `admin` superuser."

    def handle(self, *args: Any, **options: Any) -> None:
        self.check_boundaries_loaded()
        # Hashed once for all the demo accounts (they share the password): a password hash costs
        # about half a second, and a second `make setup` should take seconds.
        password = make_password(os.environ.get("ONEMAP_DEMO_PASSWORD", DEFAULT_PASSWORD))
        with transaction.atomic():
            rows = [self.upsert(account, password) for account in DEMO_ACCOUNTS]
            rows.append(self.upsert_admin(password))
        if options["verbosity"] >= 1:
            self.print_table(rows)

    def check_boundaries_loaded(self) -> None:
        districts = {a.district for a in DEMO_ACCOUNTS if a.district}
        streets = {a.street for a in DEMO_ACCOUNTS if a.street}
        missing = sorted(districts - set(District.objects.filter(code__in=districts).values_list("code", flat=True)))
        missing += sorted(streets - set(Street.objects.filter(code__in=streets).values_list("code", flat=True)))
        if missing:
            raise CommandError(
                f"districts/streets {', '.join(missing)} are not in the database: "
                "load the boundaries first (python manage.py load_fixtures)."
            )

    def upsert(self, account: DemoAccount, password: str) -> tuple[str, str, str]:
        user = self.upsert_user(account.username, account.first_name, password, staff=False)
        officer = None
        if account.link_officer:
            # The lowest id in the street, so every run (and every machine) picks the same officer.
            officer = Officer.objects.filter(street_id=account.street).order_by("id").first()
            if officer is not None:
                # The link is one-to-one: free the officer if another account holds it.
                Profile.objects.filter(officer=officer).exclude(user=user).update(officer=None)
        profile, _ = Profile.objects.update_or_create(
            user=user,
            defaults={"role": account.role, "district_id": account.district, "street_id": account.street,
                      "officer": officer},
        )
        profile.full_clean(exclude=["user"])
        user.profile = profile
        return user.username, profile.get_role_display(), Jurisdiction.of(user).label

    def upsert_admin(self, password: str) -> tuple[str, str, str]:
        user = self.upsert_user(ADMIN_USERNAME, "系统管理员", password, staff=True)
        # The superuser administers data; it has no map role and sees the city (Jurisdiction.of).
        Profile.objects.filter(user=user).delete()
        return user.username, "superuser", Jurisdiction.of(user).label

    def upsert_user(self, username: str, first_name: str, password: str, *, staff: bool):  # type: ignore[no-untyped-def]
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.first_name = first_name
        user.is_active = True
        user.is_staff = staff
        user.is_superuser = staff
        user.password = password  # already hashed by handle()
        user.save()
        return user

    def print_table(self, rows: list[tuple[str, str, str]]) -> None:
        headers = ("username", "role", "jurisdiction")
        table: list[tuple[str, ...]] = [headers, *rows]
        widths = [max(display_width(r[i]) for r in table) for i in range(3)]
        table.insert(1, tuple("-" * w for w in widths))
        for row in table:
            self.stdout.write("  ".join(pad(cell, width) for cell, width in zip(row, widths, strict=True)).rstrip())


def display_width(text: str) -> int:
    """Terminal columns: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))
