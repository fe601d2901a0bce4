"""Input of the PAL endpoints: ``PalInputSerializer``, what a PAL may contain (also its OpenAPI
schema), and ``pal_input()``, which the API, the PAL Maker and the admin run on a PAL document
before ``pals.services`` stores it (or hand to the service that builds the document itself)."""
from __future__ import annotations

from typing import Any

from rest_framework import serializers

from cvi_site.serializers import StrictSerializer, validated
from pals.layers import validate_layers
from pals.models import Pal
from pals.services import normalise_names


class PalInputSerializer(StrictSerializer):
    """What a PAL may contain (both name sets are mapped to these before validation)."""

    pal_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    system_prompt = serializers.CharField(max_length=20_000, required=False, allow_blank=True)
    context = serializers.CharField(max_length=50_000, required=False, allow_blank=True)
    greeting = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    pipeline_mode = serializers.ChoiceField(Pal.PipelineMode.choices, required=False)
    default_face_id = serializers.CharField(max_length=32, required=False, allow_null=True, allow_blank=True)
    document_ids = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=100)
    document_tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=100)
    objectives_id = serializers.CharField(max_length=32, required=False, allow_blank=True, allow_null=True)
    guardrail_ids = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=100,
                                          help_text="guardrail_uuid of each of the account's guardrails to keep.")
    guardrails_id = serializers.CharField(max_length=32, required=False, allow_blank=True, allow_null=True,
                                          help_text="(legacy) One of the account's guardrail sets: all its "
                                                    "guardrails are kept.")
    layers = serializers.JSONField(required=False)

    def validate_layers(self, value):
        # context["warnings"]: where the hosted names mapped onto engines here are reported
        return validate_layers(value, warnings=self.context.get("warnings"))

    def validate(self, attrs):
        if attrs.get("pipeline_mode", Pal.PipelineMode.FULL) == Pal.PipelineMode.FULL and "system_prompt" in attrs:
            if not attrs["system_prompt"].strip():
                raise serializers.ValidationError({"system_prompt": "is required in full pipeline mode"})
        return attrs


def pal_input(data: Any, *, warnings: list[str] | None = None) -> dict[str, Any]:
    """A PAL document's values (either name set; layers normalised), or ``InvalidError`` naming the
    fields. ``warnings``, when given, collects the hosted engine names mapped onto engines here."""
    return validated(PalInputSerializer(data=normalise_names(data), context={"warnings": warnings}))
