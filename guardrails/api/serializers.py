"""Input of ``/v2/guardrails``: the serializers of one guardrail and of a legacy set (also their
OpenAPI schema), and ``guardrail_input()`` / ``guardrail_set_input()``, which the API and the PAL
Maker run on a body before ``guardrails.services`` stores it (or hand to the service that builds
the document itself)."""
from __future__ import annotations

from typing import Any

from rest_framework import serializers

from cvi_site.serializers import OutboundURLField, StrictSerializer, validated
from guardrails.models import Guardrail

MAX_GUARDRAILS = 50


class GuardrailInputSerializer(StrictSerializer):
    """One guardrail, in the hosted shape."""

    unknown_label = "guardrail field(s)"
    not_object_message = "each guardrail must be a JSON object"

    guardrail_name = serializers.RegexField(r"^[A-Za-z0-9_]+$", max_length=100, error_messages={
        "invalid": "may hold only letters, digits and _ (e.g. no_medical_advice)"})
    guardrail_prompt = serializers.CharField(max_length=1000, help_text="The rule, as the checker reads it.")
    modality = serializers.ChoiceField(Guardrail.Modality.choices, default="verbal", help_text=(
        "verbal: checked on what the person and the agent say; visual: checked on what the camera shows "
        "(the PAL's perception)."))
    callback_url = OutboundURLField(max_length=2000, required=False, allow_blank=True, allow_null=True,
                                    help_text="Receives a webhook when the guardrail is broken.")
    tags = serializers.ListField(child=serializers.CharField(max_length=100), max_length=50, default=list)
    app_message = serializers.BooleanField(default=True, help_text=(
        "Send the client an app message when the guardrail is broken."))

    def validate_tags(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    def validate(self, attrs):
        attrs["callback_url"] = attrs.get("callback_url") or ""
        return attrs


class GuardrailSetInputSerializer(StrictSerializer):
    """A legacy guardrail set: ``{"name": ..., "data": [guardrail, ...]}``."""

    name = serializers.CharField(max_length=200, required=False, allow_blank=True,
                                 help_text="A name for the set.")
    data = serializers.ListField(child=GuardrailInputSerializer(), min_length=1, max_length=MAX_GUARDRAILS)


def guardrail_input(data: Any) -> dict[str, Any]:
    """One guardrail's values, or ``InvalidError`` naming the fields."""
    return validated(GuardrailInputSerializer(data=data))


def guardrail_set_input(data: Any) -> dict[str, Any]:
    """A legacy set's ``{"name", "data": [guardrail, ...]}``, each guardrail checked on its own (the
    service checks that their names differ), or ``InvalidError`` naming the fields."""
    return validated(GuardrailSetInputSerializer(data=data))
