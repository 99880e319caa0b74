"""The secret key (issue 14): no default in the code, a random one written once by `make setup`
(mode 600, outside git), and `make serve` refusing a missing or published key."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from config import secret_key

ROOT = Path(__file__).resolve().parent.parent
OLD_DEFAULT = "onemap-local-demo-key-not-for-production-0123456789abcdef"


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ONEMAP_SECRET_KEY")}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True,
                          timeout=60, check=False)


def test_setup_writes_a_random_key_once_with_mode_600(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret_key"
    first = run("-m", "config.secret_key", "ensure", env={"ONEMAP_SECRET_KEY_FILE": str(path)})
    assert first.returncode == 0 and "written" in first.stdout
    key = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_key.weakness(key) is None
    again = run("-m", "config.secret_key", "ensure", env={"ONEMAP_SECRET_KEY_FILE": str(path)})
    assert again.returncode == 0 and path.read_text().strip() == key, "a second setup keeps the key"
    other = tmp_path / "other"
    run("-m", "config.secret_key", "ensure", env={"ONEMAP_SECRET_KEY_FILE": str(other)})
    assert other.read_text().strip() != key, "random, not a constant"


def test_the_settings_have_no_usable_default(tmp_path: Path) -> None:
    code = "from django.conf import settings; import django; django.setup(); print(repr(settings.SECRET_KEY))"
    env = {"DJANGO_SETTINGS_MODULE": "config.settings", "ONEMAP_SECRET_KEY_FILE": str(tmp_path / "missing")}
    result = run("-c", code, env=env)
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr  # Django refuses an empty key
    assert OLD_DEFAULT not in (ROOT / "config" / "settings.py").read_text()
    (tmp_path / "key").write_text("k" * 10 + "".join(map(str, range(40))) + "\n")
    env["ONEMAP_SECRET_KEY_FILE"] = str(tmp_path / "key")
    assert run("-c", code, env=env).stdout.strip() == repr((tmp_path / "key").read_text().strip())
    env["ONEMAP_SECRET_KEY"] = "from-the-environment-" + "x1y2z3" * 8
    assert run("-c", code, env=env).stdout.strip() == repr(env["ONEMAP_SECRET_KEY"])


@pytest.mark.parametrize(("key", "refused"), [
    (OLD_DEFAULT, True),
    ("change-me", True),
    ("django-insecure-" + "a1b2c3d4e5" * 6, True),
    ("short-key", True),
    ("a" * 80, True),  # long, but one character
    ("", True),
    ("Zq8-" + "x9Kp2LmN4vB7" * 5, False),
])
def test_serve_refuses_a_missing_or_known_key(tmp_path: Path, key: str, refused: bool) -> None:
    env = {"ONEMAP_SECRET_KEY": key, "ONEMAP_SECRET_KEY_FILE": str(tmp_path / "missing")}
    result = run("-m", "config.secret_key", "check", env=env)
    assert result.returncode == (2 if refused else 0)
    assert ("refusing to serve" in result.stderr) is refused
    assert result.stderr.count("\n") <= 1  # one line


def test_the_makefile_checks_the_key_before_serving_and_only_the_demo_makes_demo_accounts() -> None:
    makefile = (ROOT / "Makefile").read_text()
    serve = makefile.split("\nserve:", 1)[1].split("\n\n", 1)[0]
    assert "config.secret_key check" in serve
    setup = makefile.split("\nsetup:", 1)[1].split("\n", 1)[0]
    assert "secret-key" in setup and "account" not in setup
    demo = makefile.split("\ndemo:", 1)[1].split("\n", 1)[0]
    assert "demo-accounts" in demo
