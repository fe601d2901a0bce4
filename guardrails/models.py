"""Guardrails (hosted shape): rules a PAL must keep in a call, each checked on what is said
(``verbal``) or on what the camera shows (``visual``). Each guardrail is addressable by its uuid
(a PAL links guardrails by ``guardrail_ids``); the legacy API groups them in a named set (``g…``,
linked by ``guardrails_id``), whose items are the same rows."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from cvi_site.ids import new_id


def guardrails_id() -> str:
    return new_id("g")


class GuardrailSet(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=guardrails_id, editable=False)
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="guardrail_sets")
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "guardrail set"

    def __str__(self) -> str:
        return self.name or self.id


class Guardrail(models.Model):
    class Modality(models.TextChoices):
        VERBAL = "verbal"
        VISUAL = "visual"

    uuid = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="guardrails")
    #: the legacy set it belongs to, if any (an individually created guardrail has none)
    guardrail_set = models.ForeignKey(GuardrailSet, null=True, blank=True, on_delete=models.CASCADE,
                                      related_name="guardrails")
    #: its place in the set's ``data`` list
    position = models.PositiveSmallIntegerField(default=0)
    guardrail_name = models.CharField(max_length=100)
    guardrail_prompt = models.TextField(max_length=1000)
    modality = models.CharField(max_length=8, choices=Modality.choices, default=Modality.VERBAL)
    callback_url = models.URLField(max_length=2000, blank=True)
    tags = models.JSONField(default=list, blank=True)
    #: send the client an app message when the guardrail is broken
    app_message = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["guardrail_set", "position", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["guardrail_set", "guardrail_name"], name="guardrail_name_unique_in_set"),
        ]

    def __str__(self) -> str:
        return self.guardrail_name
