"""Logins (issue 14): a rate limit per account and per address (django-axes), and password
hashing behind a bounded gate so that a flood of logins is refused (503) instead of taking every
core. Functional checks of the limits' behaviour, not timings."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from accounts import login_limit
from accounts.login_limit import HashingGate, LoginBusy

FAST = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def fast_logins(settings):  # type: ignore[no-untyped-def]
    """A cheap hasher (the limits do not depend on its cost), a fresh gate, a user to log in as."""
    settings.PASSWORD_HASHERS = FAST
    settings.AXES_FAILURE_LIMIT = 3
    login_limit.reset_gate()
    get_user_model().objects.create(username="limited", password=make_password("right-password"), is_active=True)
    yield
    login_limit.reset_gate()


def login(client, username: str, password: str, address: str):  # type: ignore[no-untyped-def]
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.django_db
def test_an_account_is_locked_after_its_failures_from_any_address(client, fast_logins) -> None:  # type: ignore[no-untyped-def]
    assert login(client, "limited", "right-password", "10.0.0.9").status_code == 302
    client.logout()
    for i in range(3):  # each from another address: the account's own count locks it at the 3rd
        assert login(client, "limited", "wrong", f"10.0.1.{i}").status_code == (429 if i == 2 else 200)
    locked = login(client, "limited", "right-password", "10.0.2.1")
    assert locked.status_code == 429 and locked["Content-Type"] == "application/problem+json"
    assert int(locked["Retry-After"]) > 0
    assert client.get("/").status_code == 302, "not logged in"


@pytest.mark.django_db
def test_an_address_is_locked_after_its_failures_on_any_account(client, fast_logins) -> None:  # type: ignore[no-untyped-def]
    for i, name in enumerate(("a-guess", "b-guess", "c-guess")):
        assert login(client, name, "wrong", "10.0.3.1").status_code == (429 if i == 2 else 200)
    assert login(client, "limited", "right-password", "10.0.3.1").status_code == 429
    assert login(client, "limited", "right-password", "10.0.3.2").status_code == 302, "another address is not locked"


@pytest.mark.django_db
def test_a_login_beyond_the_hashing_gate_is_refused_before_hashing(client, fast_logins, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    settings.ONEMAP_LOGIN_HASH_SLOTS, settings.ONEMAP_LOGIN_HASH_QUEUE = 1, 0
    hashed: list[str] = []
    check = get_user_model().check_password

    def counted(user, raw: str) -> bool:  # type: ignore[no-untyped-def]
        hashed.append(raw)
        return check(user, raw)

    monkeypatch.setattr(get_user_model(), "check_password", counted)
    with login_limit.gate().slot():  # another login is hashing
        busy = login(client, "limited", "right-password", "10.0.4.1")
    assert busy.status_code == 503 and busy["Content-Type"] == "application/problem+json"
    assert busy["Retry-After"] and hashed == []
    assert login(client, "limited", "right-password", "10.0.4.1").status_code == 302 and hashed == ["right-password"]


def test_the_gate_holds_slots_then_a_bounded_queue_then_refuses() -> None:
    gate = HashingGate(slots=1, queue=1, wait_s=30)
    entered, waiting = threading.Event(), threading.Event()
    release = threading.Event()

    def holder() -> None:
        with gate.slot():
            entered.set()
            release.wait(30)

    def waiter() -> None:
        waiting.set()
        with gate.slot():
            pass

    first, second = threading.Thread(target=holder), threading.Thread(target=waiter)
    first.start()
    assert entered.wait(30)
    second.start()
    assert waiting.wait(30)
    while gate.waiting == 0:  # the waiter is queued (it only waits on the semaphore)
        threading.Event().wait(0.01)
    with pytest.raises(LoginBusy):  # slot taken, queue full: refused at once
        with gate.slot():
            pass
    release.set()
    first.join(30)
    second.join(30)
    assert not second.is_alive() and gate.waiting == 0
    with gate.slot():  # free again
        pass
    timed_out = HashingGate(slots=1, queue=1, wait_s=0.01)
    with timed_out.slot():
        with pytest.raises(LoginBusy):  # waited its bound
            with timed_out.slot():
                pass
