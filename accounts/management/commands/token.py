"""python manage.py token — API tokens (for scripts and QGIS):

    token USERNAME [--name LABEL] [--days N]   issue one and print it once (only its hash is kept)
    token --list [USERNAME]                    id, user, label, created, expires, last used
    token --revoke ID [ID ...]                 delete tokens (by the ids --list shows)
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.models import ApiToken


def when(value: Any) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else "-"


class Command(BaseCommand):
    help = "Issue a bearer token for USERNAME and print it once; --list and --revoke manage them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", nargs="?")
        parser.add_argument("--name", default="cli", help="a label for the token")
        parser.add_argument("--days", type=int, help="days until it expires (default ONEMAP_API_TOKEN_DAYS)")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--list", action="store_true", help="list tokens (of USERNAME, or all)")
        action.add_argument("--revoke", type=int, nargs="+", metavar="ID", help="revoke tokens by id")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            self.list_tokens(options["username"])
        elif options["revoke"]:
            self.revoke_tokens(options["revoke"])
        else:
            self.issue_token(options["username"], options["name"], options["days"])

    def issue_token(self, username: str | None, name: str, days: int | None) -> None:
        if not username:
            raise CommandError("give a USERNAME (or --list, --revoke ID)", returncode=2)
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1", returncode=2)
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user named {username!r}", returncode=2)
        _, raw = ApiToken.issue(user, name=name, days=days)
        self.stdout.write(raw)

    def list_tokens(self, username: str | None) -> None:
        tokens = ApiToken.objects.select_related("user").order_by("id")
        if username:
            tokens = tokens.filter(user__username=username)
        now = timezone.now()
        self.stdout.write("id\tuser\tname\tcreated\texpires\tlast used")
        for token in tokens:
            expired = " (expired)" if token.expires_at and token.expires_at < now else ""
            self.stdout.write(f"{token.pk}\t{token.user.get_username()}\t{token.name}\t{when(token.created_at)}\t"
                              f"{when(token.expires_at)}{expired}\t{when(token.last_used_at)}")

    def revoke_tokens(self, ids: list[int]) -> None:
        found = set(ApiToken.objects.filter(pk__in=ids).values_list("pk", flat=True))
        missing = sorted(set(ids) - found)
        if missing:  # nothing revoked: a typo must not revoke the others silently
            raise CommandError(f"no token with id {', '.join(map(str, missing))}", returncode=2)
        ApiToken.objects.filter(pk__in=ids).delete()
        self.stdout.write(f"revoked {len(ids)} token(s)")
