"""Accounts own everything (PALs, faces, conversations, documents); API keys belong to one.

An account is also the login of the web UI (Django's auth user model), so the REST API and
the PAL Maker see the same objects.
"""
from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class Account(AbstractUser):
    """A tenant, and the user who signs in to it."""

    max_concurrent_conversations = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Live conversations allowed at once; empty uses the site default.",
    )
    allowed_embed_origins = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            "Origins (e.g. https://example.com) allowed to embed this account's conversation "
            "pages in an iframe. Empty: same origin only."
        ),
    )

    class Meta:
        verbose_name = "account"
        verbose_name_plural = "accounts"

    def __str__(self) -> str:
        return self.username


class ApiKey(models.Model):
    """An API key. The secret is shown once at creation; only its hash and prefix are kept."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'unnamed'})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class WebhookDelivery(models.Model):
    """One webhook event on its way to a ``callback_url``, with every attempt at delivering it.

    Deliveries are retried with backoff (``settings.WEBHOOK_RETRY_DELAYS``, about an hour in all)
    and shown, with their attempts, on the page of the conversation or face they are about; the
    owner can resend one.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "waiting to be sent"
        DELIVERED = "delivered", "delivered"
        FAILED = "failed", "failed"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, null=True, blank=True,
                                related_name="webhook_deliveries")
    subject_id = models.CharField(max_length=32, db_index=True,
                                  help_text="The conversation or face the event is about.")
    event_type = models.CharField(max_length=100)
    url = models.URLField(max_length=2000)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True,
                                           help_text="When a pending delivery is next tried.")
    attempts = models.JSONField(default=list, blank=True,
                                help_text="Every try: when, the HTTP status or the error, how long it took.")
    send_round = models.PositiveSmallIntegerField(default=1, help_text="1, plus one for each resend.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event_type} → {self.url} ({self.status})"
