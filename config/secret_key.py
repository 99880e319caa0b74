"""The secret key: ONEMAP_SECRET_KEY, else the file `make setup` writes once (.var/secret_key,
mode 600, outside git; ONEMAP_SECRET_KEY_FILE moves it). There is no built-in default: a key
shipped with the code signs tile tokens that anyone could forge (issue 14).

    python -m config.secret_key ensure   # make setup: write a random key unless one exists
    python -m config.secret_key check    # make serve: exit 2 if the key is missing or known
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from config.env import BASE_DIR, env

# Keys that were published (the old built-in default, .env.example's placeholder): refused.
KNOWN_KEYS = frozenset({
    "onemap-local-demo-key-not-for-production-0123456789abcdef",
    "change-me",
})
MIN_LENGTH = 50  # Django's own check (security.W009) asks for 50 characters, 5 of them distinct
MIN_DISTINCT = 5


def key_file() -> Path:
    return Path(env("SECRET_KEY_FILE", str(BASE_DIR / ".var" / "secret_key")))


def load() -> str:
    """The configured key, or "" when there is none (Django then refuses to sign anything)."""
    key = env("SECRET_KEY")
    if key:
        return key
    try:
        return key_file().read_text().strip()
    except FileNotFoundError:
        return ""


def weakness(key: str) -> str | None:
    """Why the key must not sign anything in production, or None."""
    if not key:
        return "no secret key: set ONEMAP_SECRET_KEY or run `make setup` (it writes .var/secret_key)"
    if key in KNOWN_KEYS or key.startswith("django-insecure-"):
        return "the secret key is a published one"
    if len(key) < MIN_LENGTH or len(set(key)) < MIN_DISTINCT:
        return f"the secret key is too weak (at least {MIN_LENGTH} characters, {MIN_DISTINCT} distinct)"
    return None


def ensure(path: Path) -> bool:
    """Write a random key to `path` (mode 600) unless a file is there; True if one was written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # O_EXCL: never overwrite a key (tokens and sessions signed with it would all break)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(64) + "\n")
    return True


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "ensure":
        if ensure(key_file()):
            print(f"secret key: written to {key_file()} (mode 600)")
        return 0
    if command == "check":
        problem = weakness(load())
        if problem:
            print(f"refusing to serve: {problem}", file=sys.stderr)
            return 2
        return 0
    print("usage: python -m config.secret_key ensure|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
