"""PALs (legacy name: personas): who an agent is, and how each pipeline layer behaves."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from cvi_site.ids import pal_id


class Pal(models.Model):
    class PipelineMode(models.TextChoices):
        FULL = "full"
        ECHO = "echo"

    id = models.CharField(primary_key=True, max_length=32, default=pal_id, editable=False)
    # Empty account: a stock PAL, usable by every account and read-only for them.
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="pals"
    )
    pal_name = models.CharField(max_length=200, blank=True)
    system_prompt = models.TextField(blank=True)
    context = models.TextField(blank=True)
    # Ours: a greeting used when a conversation gives no custom_greeting.
    greeting = models.TextField(blank=True)
    pipeline_mode = models.CharField(max_length=8, choices=PipelineMode.choices, default=PipelineMode.FULL)
    default_face = models.ForeignKey(
        "faces.Face", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    document_ids = models.JSONField(default=list, blank=True)
    document_tags = models.JSONField(default=list, blank=True)
    objectives_id = models.CharField(max_length=32, blank=True)
    #: uuids of the account's guardrails (guardrails.Guardrail)
    guardrail_ids = models.JSONField(default=list, blank=True)
    #: (legacy) one of the account's guardrail sets (guardrails.GuardrailSet), its items all apply
    guardrails_id = models.CharField(max_length=32, blank=True)
    # Normalised layer configuration (see pals.layers): perception, conversational_flow, stt, llm, tts.
    layers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "PAL"

    def __str__(self) -> str:
        return self.pal_name or self.id

    @property
    def is_stock(self) -> bool:
        return self.account_id is None
