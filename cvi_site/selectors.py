"""Reads for accounts and API keys."""
from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet

from cvi_site.models import Account, ApiKey, WebhookDelivery
from cvi_site.services import api_key_hash


def api_key_get_active(*, raw_key: str) -> ApiKey | None:
    if not raw_key:
        return None
    return (
        ApiKey.objects.select_related("account")
        .filter(key_hash=api_key_hash(raw_key), revoked_at__isnull=True, account__is_active=True)
        .first()
    )


def api_key_list(*, account: Account) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(account=account).order_by("-created_at")


def account_conversation_limit(*, account: Account) -> int:
    return account.max_concurrent_conversations or settings.MAX_CONCURRENT_CONVERSATIONS


def webhook_deliveries_of(*, account: Account) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(account=account)


def webhook_deliveries(*, account: Account, subject_id: str) -> QuerySet[WebhookDelivery]:
    """The webhooks sent about one conversation or face of ``account``, newest first."""
    return webhook_deliveries_of(account=account).filter(subject_id=subject_id)
