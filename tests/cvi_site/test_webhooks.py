"""Webhooks: signed bodies, stored deliveries retried with backoff, every attempt recorded, and
resend. The HTTP side is a real local receiver; the retry task is run here, one try at a time,
with its scheduling captured (the live test in tests/web/test_one_account.py runs it in a worker)."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytestmark = pytest.mark.django_db


class Receiver:
    """A webhook receiver answering the POSTs of each event type with the next status of ``script``
    (the last repeats)."""

    def __init__(self, script: list[int]) -> None:
        self.scripts: dict[str, list[int]] = {}
        self.got: list[tuple[dict, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append((dict(self.headers), body))
                remaining = outer.scripts.setdefault(json.loads(body).get("event_type", ""), list(script))
                status = remaining.pop(0) if len(remaining) > 1 else remaining[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scheduled(monkeypatch):
    """The retries the task schedules, as (delivery id, countdown), instead of a broker."""
    from cvi_site import webhooks

    calls: list[tuple[int, float]] = []
    monkeypatch.setattr(webhooks.webhook_attempt, "apply_async",
                        lambda args, countdown: calls.append((args[0], countdown)))
    monkeypatch.setattr(webhooks.webhook_attempt, "delay", lambda delivery_id: calls.append((delivery_id, 0)))
    return calls


def _send(url: str, account=None, event_type: str = "system.shutdown"):
    from cvi_site.webhooks import webhook_send

    return webhook_send(url=url, payload={"event_type": event_type, "n": 1}, event_type=event_type,
                        subject_id="c123", account_id=account.pk if account else None)


def _try_now(delivery):
    """Run the task for ``delivery`` as if its retry were due."""
    from cvi_site.models import WebhookDelivery
    from cvi_site.webhooks import webhook_attempt
    from django.utils import timezone

    WebhookDelivery.objects.filter(pk=delivery.pk, next_attempt_at__isnull=False).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1))
    outcome = webhook_attempt.apply(args=(delivery.pk,)).get()
    delivery.refresh_from_db()
    return outcome


def test_a_webhook_carries_the_hmac_of_its_body(settings, scheduled, django_capture_on_commit_callbacks):
    settings.WEBHOOK_SECRET = "a-shared-secret-of-the-receiver"
    receiver = Receiver([204])
    try:
        with django_capture_on_commit_callbacks(execute=True):
            delivery = _send(receiver.url)
        assert scheduled == [(delivery.pk, 0)]  # queued once the transaction committed
        assert _try_now(delivery) == "delivered"
    finally:
        receiver.close()
    from cvi_site.webhooks import SIGNATURE_HEADER

    headers, body = receiver.got[-1]
    expected = "sha256=" + hmac.new(b"a-shared-secret-of-the-receiver", body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == expected
    sent = json.loads(body)
    assert sent["event_type"] == "system.shutdown" and sent["n"] == 1 and sent["webhook_url"] == receiver.url
    assert delivery.attempts[0]["status_code"] == 204 and delivery.next_attempt_at is None


def test_failures_are_retried_with_backoff_and_every_try_is_recorded(settings, scheduled):
    settings.WEBHOOK_RETRY_DELAYS = [10, 30, 60]
    receiver = Receiver([503, 429, 204])
    try:
        delivery = _send(receiver.url)
        assert _try_now(delivery) == "pending"
        assert _try_now(delivery) == "pending"
        assert _try_now(delivery) == "delivered"
    finally:
        receiver.close()
    assert [a["status_code"] for a in delivery.attempts] == [503, 429, 204]
    assert [countdown for _, countdown in scheduled] == [10, 30]  # the backoff, in order
    assert len({json.loads(body)["timestamp"] for _, body in receiver.got}) == 1  # the same event each time


def test_a_receiver_that_never_answers_is_given_up_on_after_the_last_delay(settings, scheduled):
    from tests.live import free_port  # a port nothing listens on

    settings.WEBHOOK_RETRY_DELAYS = [1, 2]
    delivery = _send(f"http://127.0.0.1:{free_port()}/hook")
    outcomes = [_try_now(delivery) for _ in range(3)]
    assert outcomes == ["pending", "pending", "failed"]
    assert all(a["status_code"] is None and a["error"] for a in delivery.attempts)
    assert _try_now(delivery) is None  # a failed delivery is not tried again by a stray task


def test_a_refusal_is_not_retried(settings, scheduled):
    receiver = Receiver([410])
    try:
        delivery = _send(receiver.url)
        assert _try_now(delivery) == "failed"
    finally:
        receiver.close()
    assert len(receiver.got) == 1 and scheduled == []


def test_a_private_address_is_recorded_and_never_tried(scheduled):
    from cvi_site import netguard

    receiver = Receiver([204])
    netguard.configure(allow_private=False)
    try:
        delivery = _send(receiver.url)
        assert _try_now(delivery) == "failed"
    finally:
        netguard.configure(allow_private=True)
        receiver.close()
    assert receiver.got == [] and "private" in delivery.attempts[0]["error"]


def test_two_tasks_for_one_due_try_send_it_once(scheduled):
    from cvi_site.webhooks import webhook_attempt

    receiver = Receiver([204])
    try:
        delivery = _send(receiver.url)
        first = webhook_attempt.apply(args=(delivery.pk,)).get()
        second = webhook_attempt.apply(args=(delivery.pk,)).get()
    finally:
        receiver.close()
    assert (first, second) == ("delivered", None) and len(receiver.got) == 1


def test_resend_starts_a_new_round_and_keeps_the_history(settings, scheduled, django_capture_on_commit_callbacks):
    from cvi_site.webhooks import webhook_resend

    settings.WEBHOOK_RETRY_DELAYS = [1]
    receiver = Receiver([500, 500, 204])
    try:
        delivery = _send(receiver.url)
        assert [_try_now(delivery), _try_now(delivery)] == ["pending", "failed"]
        with django_capture_on_commit_callbacks(execute=True):
            webhook_resend(delivery=delivery)
        assert scheduled[-1] == (delivery.pk, 0)
        assert _try_now(delivery) == "delivered"
    finally:
        receiver.close()
    assert [(a["round"], a["status_code"]) for a in delivery.attempts] == [(1, 500), (1, 500), (2, 204)]


def test_overdue_tries_are_queued_by_the_sweep(scheduled):
    from cvi_site.models import WebhookDelivery
    from cvi_site.webhooks import webhook_retry_overdue
    from django.utils import timezone

    lost = _send("https://hooks.example.com/lost")
    _send("https://hooks.example.com/fresh")  # due now: its own task is on its way
    WebhookDelivery.objects.filter(pk=lost.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    assert webhook_retry_overdue() == 1 and scheduled == [(lost.pk, 0)]
