from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.decorators import api_view
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory

from cvi_site.models import Account, ApiKey
from cvi_site.services import api_key_create, api_key_hash, api_key_revoke


@api_view(["GET"])
def whoami(request):
    return Response({"account": request.user.username})


factory = APIRequestFactory()


def _call(key: str | None):
    headers = {"HTTP_X_API_KEY": key} if key is not None else {}
    return whoami(factory.get("/whoami", **headers))


@pytest.mark.django_db
def test_valid_key_authenticates_its_account(account):
    created = api_key_create(account=account, name="ci")
    response = _call(created.raw_key)
    assert response.status_code == 200
    assert response.data == {"account": "alice"}
    created.api_key.refresh_from_db()
    assert created.api_key.last_used_at is not None


@pytest.mark.django_db
def test_key_is_stored_hashed_with_a_short_prefix(account):
    created = api_key_create(account=account)
    stored = ApiKey.objects.get(pk=created.api_key.pk)
    assert created.raw_key not in (stored.key_hash, stored.prefix)
    assert stored.key_hash == api_key_hash(created.raw_key)
    assert created.raw_key.startswith(stored.prefix) and len(stored.prefix) <= 12


@pytest.mark.django_db
def test_revoked_key_is_refused(account):
    created = api_key_create(account=account)
    api_key_revoke(api_key=created.api_key)
    response = _call(created.raw_key)
    assert response.status_code == 401
    assert response.data == {"message": "Invalid access token"}


@pytest.mark.django_db
def test_wrong_key_gets_documented_401(account):
    api_key_create(account=account)
    response = _call("cvi_not-a-real-key")
    assert response.status_code == 401
    assert response.data == {"message": "Invalid access token"}


@pytest.mark.django_db
def test_missing_key_gets_401():
    response = _call(None)
    assert response.status_code == 401
    assert response.data == {"message": "Invalid access token"}


@pytest.mark.django_db
def test_create_api_key_command_prints_a_working_key(capsys):
    call_command("create_api_key", "bob", "--create-account")
    raw = capsys.readouterr().out.strip()
    assert raw.startswith("cvi_")
    assert _call(raw).data == {"account": "bob"}


@pytest.mark.django_db
def test_create_api_key_command_refuses_unknown_account():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No account"):
        call_command("create_api_key", "nobody")


@pytest.mark.django_db
def test_create_api_key_sets_a_password_from_the_environment(capsys, monkeypatch):
    from django.contrib.auth import authenticate

    monkeypatch.setenv("OPENCVI_PASSWORD", "a-long-enough-password-7")
    call_command("create_api_key", "carol", "--create-account", "--password")
    out, err = capsys.readouterr()
    assert out.strip().startswith("cvi_") and len(out.strip().splitlines()) == 1
    assert "Sign in to the PAL Maker at" in err and "'carol'" in err
    assert authenticate(username="carol", password="a-long-enough-password-7") is not None
    # an existing account gets its password changed, and another key
    monkeypatch.setenv("OPENCVI_PASSWORD", "another-long-password-8")
    call_command("create_api_key", "carol", "--password")
    assert authenticate(username="carol", password="another-long-password-8") is not None


@pytest.mark.django_db
def test_create_api_key_refuses_a_weak_password_or_no_terminal(monkeypatch):
    monkeypatch.setenv("OPENCVI_PASSWORD", "password")
    with pytest.raises(CommandError, match="password refused"):
        call_command("create_api_key", "dave", "--create-account", "--password")
    assert not Account.objects.filter(username="dave").exists()
    monkeypatch.delenv("OPENCVI_PASSWORD")  # and pytest's stdin is no terminal
    with pytest.raises(CommandError, match="needs a terminal"):
        call_command("create_api_key", "dave", "--create-account", "--password")
