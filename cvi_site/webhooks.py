"""Signed webhooks, delivered by a Celery task with retries and backoff.

Every POST carries ``X-OpenCVI-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` keyed by
``WEBHOOK_SECRET``, so a receiver can check the sender.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime, timezone

from celery import shared_task
from django.conf import settings
from django.db import transaction

from conversations.realtime import netguard

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-OpenCVI-Signature"
MAX_ATTEMPTS = 6


def sign(body: bytes, secret: str | None = None) -> str:
    key = (secret or settings.WEBHOOK_SECRET).encode()
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def encode(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


def webhook_send(*, url: str, payload: dict) -> None:
    """Queue a webhook after the current transaction commits (no-op without a URL)."""
    if not url:
        return
    payload = {**payload, "webhook_url": url}
    payload.setdefault("timestamp", datetime.now(timezone.utc).isoformat())
    transaction.on_commit(lambda: webhook_deliver.delay(url, payload))


@shared_task(name="cvi_site.webhook_deliver", bind=True, max_retries=MAX_ATTEMPTS - 1, acks_late=True)
def webhook_deliver(self, url: str, payload: dict) -> int:
    import httpx

    body = encode(payload)
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body), "User-Agent": "OpenCVI-Webhooks/1"}
    try:
        with netguard.client(timeout=10) as client:
            response = client.post(url, content=body, headers=headers)
        if response.status_code >= 500 or response.status_code == 429:
            raise httpx.HTTPStatusError("retryable status", request=response.request, response=response)
    except netguard.PrivateAddressRefused as exc:
        logger.warning("webhook to %s refused: %s", url, exc)
        return 0
    except httpx.HTTPError as exc:
        delay = min(300, 2 ** (self.request.retries + 1))
        logger.warning("webhook to %s failed (attempt %d): %s", url, self.request.retries + 1, exc)
        raise self.retry(exc=exc, countdown=delay)
    if response.status_code >= 400:
        logger.warning("webhook to %s refused with %d; not retried", url, response.status_code)
    return response.status_code
