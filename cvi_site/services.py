"""Writes for accounts and API keys."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from cvi_site.models import Account, ApiKey

KEY_PREFIX_LEN = 8


def api_key_hash(raw_key: str) -> str:
    # Keys are 256-bit random tokens, so a plain SHA-256 is enough (no need for a slow KDF).
    return hashlib.sha256(raw_key.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    raw_key: str  # shown to the user once, never stored


@transaction.atomic
def api_key_create(*, account: Account, name: str = "") -> CreatedApiKey:
    raw = "cvi_" + secrets.token_urlsafe(32)
    key = ApiKey(account=account, name=name[:100], prefix=raw[: KEY_PREFIX_LEN], key_hash=api_key_hash(raw))
    key.full_clean()
    key.save()
    return CreatedApiKey(api_key=key, raw_key=raw)


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


@transaction.atomic
def account_create(*, username: str, password: str | None = None, email: str = "", is_staff: bool = False) -> Account:
    account = Account(username=username, email=email, is_staff=is_staff, is_superuser=is_staff)
    if password:
        account.set_password(password)
    else:
        account.set_unusable_password()
    account.full_clean()
    account.save()
    return account


@transaction.atomic
def account_update_embed_origins(*, account: Account, origins: list[str]) -> Account:
    from cvi_site.validators import validate_origin

    cleaned = []
    for origin in origins:
        origin = origin.strip().rstrip("/")
        if origin:
            validate_origin(origin)
            cleaned.append(origin)
    account.allowed_embed_origins = cleaned
    account.full_clean()
    account.save(update_fields=["allowed_embed_origins"])
    return account
