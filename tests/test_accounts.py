"""Demo accounts, session login/logout and bearer tokens."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.jurisdiction import Jurisdiction
from accounts.management.commands import create_demo_accounts
from accounts.models import Profile, Role
from geo.models import Officer

DEMO_PASSWORD = "onemap-demo"
EXPECTED = {
    # username: (role, jurisdiction label)
    "commander": (Role.CITY_COMMANDER, "city"),
    "dongcheng": (Role.DISTRICT_DISPATCHER, "district 110101"),
    "donghuamen": (Role.STREET_DISPATCHER, "street 110101001"),
    "officer1": (Role.FIELD_OFFICER, "street 110101001"),
    "officer2": (Role.FIELD_OFFICER, "street 110101002"),
    "wall": (Role.WALL_DISPLAY, "city"),
}


@pytest.fixture
def fast_hasher(settings):  # type: ignore[no-untyped-def]
    """The command sets seven passwords per run; PBKDF2 would spend seconds on them."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                                 "django.contrib.auth.hashers.PBKDF2PasswordHasher"]


def snapshot() -> dict[str, tuple]:
    users = get_user_model().objects.filter(username__in=[*EXPECTED, "admin"]).order_by("username")
    return {
        u.username: (u.pk, u.is_staff, u.is_superuser,
                     Profile.objects.filter(user=u).values_list("role", "district_id", "street_id", "officer_id").first())
        for u in users
    }


@pytest.mark.django_db
def test_create_demo_accounts_is_idempotent_and_sets_roles_and_jurisdictions(fast_hasher) -> None:
    call_command("create_demo_accounts", verbosity=0)
    first = snapshot()
    call_command("create_demo_accounts", verbosity=0)
    assert snapshot() == first
    assert set(first) == {*EXPECTED, "admin"}

    User = get_user_model()
    for username, (role, label) in EXPECTED.items():
        user = User.objects.get(username=username)
        assert user.profile.role == role
        assert Jurisdiction.of(user).label == label
        assert not user.is_staff and user.check_password(DEMO_PASSWORD)
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser and admin.check_password(DEMO_PASSWORD)
    assert Jurisdiction.of(admin).label == "city"


@pytest.mark.django_db
def test_field_officers_carry_the_lowest_id_officer_of_their_street(fast_hasher) -> None:
    call_command("create_demo_accounts", verbosity=0)
    for username, street in (("officer1", "110101001"), ("officer2", "110101002")):
        expected = Officer.objects.filter(street_id=street).order_by("id").values_list("id", flat=True).first()
        assert Profile.objects.get(user__username=username).officer_id == expected


@pytest.mark.django_db
def test_create_demo_accounts_prints_the_table(fast_hasher) -> None:
    out = io.StringIO()
    call_command("create_demo_accounts", verbosity=1, stdout=out)
    text = out.getvalue()
    assert "username" in text and "jurisdiction" in text
    assert "donghuamen" in text and "street 110101001" in text


@pytest.mark.django_db
def test_create_demo_accounts_fails_clearly_without_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    # A district that is not loaded stands for a fresh database.
    missing = create_demo_accounts.DemoAccount("nowhere", Role.DISTRICT_DISPATCHER, "x", district="110199")
    monkeypatch.setattr(create_demo_accounts, "DEMO_ACCOUNTS", [missing])
    with pytest.raises(CommandError, match="load_fixtures"):
        call_command("create_demo_accounts", verbosity=0)
    assert not get_user_model().objects.filter(username="nowhere").exists()


@pytest.mark.django_db
def test_login_with_a_demo_account_then_logout(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/login/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "用户名 Username" in body and "密码 Password" in body
    assert "http://" not in body and "https://" not in body  # nothing loads from elsewhere

    response = client.post("/login/", {"username": "dongcheng", "password": DEMO_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/")["Location"] == "/console"  # `/` sends each role to its mode
    assert client.get("/console").status_code == 200

    assert client.get("/logout/").status_code == 405  # logout is POST only
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/console")["Location"] == "/login/?next=/console"


@pytest.mark.django_db
def test_login_with_a_wrong_password_fails(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/login/", {"username": "dongcheng", "password": "wrong"})
    assert response.status_code == 200
    assert "Wrong username or password" in response.content.decode()
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_token_command_issues_a_bearer_token_that_authenticates(client) -> None:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    call_command("token", "commander", stdout=out)
    raw = out.getvalue().strip()
    assert raw.startswith("om_")

    ok = client.get("/api/map/districts.geojson", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert ok.status_code == 200
    wrong = client.get("/api/map/districts.geojson", HTTP_AUTHORIZATION=f"Bearer {raw}x")
    assert wrong.status_code == 401
    assert wrong["Content-Type"] == "application/problem+json"
    assert client.get("/api/map/districts.geojson").status_code == 401


@pytest.mark.django_db
def test_api_tokens_expire_by_default(client, settings) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import ApiToken

    settings.ONEMAP_API_TOKEN_DAYS = 90
    settings.ONEMAP_API_TOKEN_CHECK_S = 0  # the expiry is changed in the database behind the process's back
    out = io.StringIO()
    call_command("token", "commander", stdout=out)
    raw = out.getvalue().strip()
    token = ApiToken.objects.latest("id")
    assert token.expires_at is not None
    assert abs(token.expires_at - (timezone.now() + timedelta(days=90))) < timedelta(minutes=1)
    assert client.get("/api/map/districts.geojson", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get("/api/map/districts.geojson", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    call_command("token", "commander", "--days", "3", stdout=io.StringIO())
    short = ApiToken.objects.latest("id").expires_at
    assert short is not None and short < timezone.now() + timedelta(days=3, minutes=1)


@pytest.mark.django_db
def test_token_list_and_revoke(client) -> None:  # type: ignore[no-untyped-def]
    from accounts.models import ApiToken

    raws = []
    for name in ("qgis", "script"):
        out = io.StringIO()
        call_command("token", "dongcheng", "--name", name, stdout=out)
        raws.append(out.getvalue().strip())
    ids = list(ApiToken.objects.filter(user__username="dongcheng").order_by("id").values_list("id", flat=True))
    listing = io.StringIO()
    call_command("token", "--list", "dongcheng", stdout=listing)
    lines = listing.getvalue().splitlines()
    assert lines[0].split("\t") == ["id", "user", "name", "created", "expires", "last used"]
    assert [line.split("\t")[:3] for line in lines[1:]][-2:] == [[str(ids[-2]), "dongcheng", "qgis"],
                                                                 [str(ids[-1]), "dongcheng", "script"]]
    assert all(raw not in listing.getvalue() for raw in raws), "the list never shows a token"
    call_command("token", "--revoke", str(ids[-2]), stdout=io.StringIO())
    assert client.get("/api/map/districts.geojson", HTTP_AUTHORIZATION=f"Bearer {raws[0]}").status_code == 401
    assert client.get("/api/map/districts.geojson", HTTP_AUTHORIZATION=f"Bearer {raws[1]}").status_code == 200
    with pytest.raises(CommandError) as error:  # an unknown id revokes nothing, exit code 2
        call_command("token", "--revoke", str(ids[-1]), "999999999")
    assert error.value.returncode == 2 and ApiToken.objects.filter(pk=ids[-1]).exists()
    with pytest.raises(CommandError) as error:
        call_command("token")
    assert error.value.returncode == 2


@pytest.mark.django_db
def test_token_lookups_are_remembered_but_revocation_bites_at_once(client, settings) -> None:  # type: ignore[no-untyped-def]
    """A token's user is looked up once per ONEMAP_API_TOKEN_CHECK_S (here an hour); deleting the
    token, or deactivating its user through the ORM, is seen by the next request of this process."""
    from django.contrib.auth import get_user_model

    from accounts.models import ApiToken

    settings.ONEMAP_API_TOKEN_CHECK_S = 3600
    url = "/api/map/districts.geojson"
    user = get_user_model().objects.get(username="dongcheng")
    raw = ApiToken.issue(user, name="remembered")[1]
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    get_user_model().objects.filter(pk=user.pk).update(first_name="x")  # no signal: still remembered
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    user.is_active = True
    user.save(update_fields=["is_active"])
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    ApiToken.objects.filter(name="remembered").delete()
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
