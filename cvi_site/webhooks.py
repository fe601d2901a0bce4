"""Signed webhooks: each event is a stored delivery, tried by a Celery task and retried with backoff.

Every POST carries ``X-OpenCVI-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` keyed by
``WEBHOOK_SECRET``, so a receiver can check the sender.

A delivery is tried at once, then again after each of ``settings.WEBHOOK_RETRY_DELAYS`` (about an
hour in all) while the receiver cannot be reached, times out, or answers 5xx, 408 or 429. Any other
4xx is the receiver's refusal and is not retried; a private address (with ``ALLOW_PRIVATE_URLS``
off) is never tried. Every attempt is recorded on the delivery, which the owner sees on the
conversation's (or face's) page and can resend.

A try first *claims* the delivery (a conditional update that moves ``next_attempt_at`` past a
lease), so a retry task and the overdue sweep never send the same attempt twice.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta, timezone

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone as dj_timezone

from cvi_site import netguard
from cvi_site.models import WebhookDelivery

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-OpenCVI-Signature"
TIMEOUT_S = 10.0
#: how long a claimed try holds its delivery; past it, the overdue sweep may try again
CLAIM_LEASE = timedelta(seconds=60)
#: statuses a receiver uses for "not now": retried like a network error
RETRYABLE_4XX = frozenset({408, 429})


def retry_policy() -> str:
    """The retry schedule in words, for the pages that list deliveries."""
    delays = settings.WEBHOOK_RETRY_DELAYS
    total = sum(delays)
    span = f"{total / 60:.0f} min" if total >= 120 else f"{total} s"
    return f"up to {len(delays) + 1} tries over {span}" if delays else "one try, no retries"


def sign(body: bytes, secret: str | None = None) -> str:
    key = (secret or settings.WEBHOOK_SECRET).encode()
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def encode(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


def webhook_send(*, url: str, payload: dict, event_type: str, subject_id: str,
                 account_id: int | None) -> WebhookDelivery | None:
    """Store a delivery and queue its first try after the current transaction commits
    (nothing without a URL)."""
    if not url:
        return None
    payload = {**payload, "webhook_url": url}
    payload.setdefault("timestamp", datetime.now(timezone.utc).isoformat())
    delivery = WebhookDelivery.objects.create(
        account_id=account_id, subject_id=subject_id, event_type=event_type, url=url, payload=payload,
        next_attempt_at=dj_timezone.now(),
    )
    transaction.on_commit(lambda: webhook_attempt.delay(delivery.pk))
    return delivery


def webhook_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again from its first try (a new round of retries), whatever its status."""
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.send_round += 1
    delivery.next_attempt_at = dj_timezone.now()
    delivery.save(update_fields=["status", "send_round", "next_attempt_at"])
    transaction.on_commit(lambda: webhook_attempt.delay(delivery.pk))
    return delivery


def _claim(delivery_id: int) -> WebhookDelivery | None:
    now = dj_timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now,
    ).update(next_attempt_at=now + CLAIM_LEASE)
    return WebhookDelivery.objects.filter(pk=delivery_id).first() if claimed else None


def _post(url: str, body: bytes) -> tuple[int | None, str]:
    """POST the body; (HTTP status, "") or (None, what went wrong)."""
    import httpx

    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body), "User-Agent": "OpenCVI-Webhooks/1"}
    try:
        with netguard.client(timeout=TIMEOUT_S) as client:
            response = client.post(url, content=body, headers=headers)
    except netguard.PrivateAddressRefused:
        raise  # an httpx.ConnectError too, but never worth retrying: the caller records it
    except httpx.TimeoutException:
        return None, f"no answer within {TIMEOUT_S:.0f} s"
    except httpx.HTTPError as exc:
        return None, (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return response.status_code, ""


@shared_task(name="cvi_site.webhook_attempt", acks_late=True)
def webhook_attempt(delivery_id: int) -> str | None:
    """One try at a delivery; schedules the next one when it may still succeed. Returns the
    delivery's status, or None when it was not due (already tried, delivered or taken)."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    started = time.monotonic()
    attempt: dict = {"at": dj_timezone.now().isoformat(), "round": delivery.send_round}
    retry = False
    try:
        status_code, error = _post(delivery.url, encode(delivery.payload))
    except netguard.PrivateAddressRefused as exc:
        status_code, error = None, f"not sent: {exc}"
    else:
        retry = status_code is None or status_code >= 500 or status_code in RETRYABLE_4XX
    attempt.update(ms=round((time.monotonic() - started) * 1000), status_code=status_code, error=error)

    tries = 1 + sum(1 for a in delivery.attempts if a.get("round") == delivery.send_round)
    delays = settings.WEBHOOK_RETRY_DELAYS
    update = {"attempts": [*delivery.attempts, attempt]}
    if status_code is not None and 200 <= status_code < 400:
        update.update(status=WebhookDelivery.Status.DELIVERED, next_attempt_at=None)
    elif retry and tries <= len(delays):
        delay = delays[tries - 1]
        update.update(next_attempt_at=dj_timezone.now() + timedelta(seconds=delay))
        attempt["retry_in_s"] = delay
    else:
        update.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**update)
    outcome = update.get("status", WebhookDelivery.Status.PENDING)
    if outcome != WebhookDelivery.Status.DELIVERED:
        logger.warning("webhook %s to %s, try %d: %s → %s", delivery.event_type, delivery.url, tries,
                       status_code or error, outcome)
    if outcome == WebhookDelivery.Status.PENDING:
        webhook_attempt.apply_async((delivery.pk,), countdown=attempt["retry_in_s"])
    return outcome


@shared_task(name="cvi_site.webhook_retry_overdue")
def webhook_retry_overdue() -> int:
    """Queue tries whose timed task was lost (a worker restarted while it waited)."""
    overdue = dj_timezone.now() - CLAIM_LEASE
    ids = list(WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=overdue).values_list("pk", flat=True)[:500])
    for delivery_id in ids:
        webhook_attempt.delay(delivery_id)
    return len(ids)
