"""Input of ``/v2/objectives``: the serializers of an objective and of a set's body (also their
OpenAPI schema), and ``objectives_input()``, which the API and the PAL Maker run on a body before
``objectives.services`` checks the objectives as a graph and stores them."""
from __future__ import annotations

from typing import Any

from rest_framework import serializers

from cvi_site.serializers import OutboundURLField, StrictSerializer, validated
from objectives.models import Objective

#: the most objectives in one set, and the most variables / branches of one objective
MAX_OBJECTIVES = 50
MAX_VARIABLES = 50
NO_SPACES = r"^\S+$"
VISUAL_REFUSED = ("visual objectives are not supported: a call evaluates objectives from the transcript only, "
                  "so no visual cue could ever complete one (use verbal)")


class ObjectiveInputSerializer(StrictSerializer):
    """One objective of a set, in the hosted shape."""

    unknown_label = "objective field(s)"
    not_object_message = "each objective must be a JSON object"

    objective_name = serializers.RegexField(NO_SPACES, max_length=100, error_messages={
        "invalid": "must have no spaces (e.g. ask_if_new_patient)"},
        help_text="Unique in the set, no spaces; next_* objectives refer to it.")
    objective_prompt = serializers.CharField(max_length=5000, help_text="What the agent should accomplish.")
    confirmation_mode = serializers.ChoiceField(Objective.ConfirmationMode.choices, default="auto", help_text=(
        "auto: the call decides when the objective is done; manual: the client confirms it "
        "(conversation.objective.pending / conversation.objective.confirm)."))
    output_variables = serializers.ListField(
        child=serializers.RegexField(NO_SPACES, max_length=100, error_messages={"invalid": "must have no spaces"}),
        max_length=MAX_VARIABLES, default=list, help_text="Values to collect; sent with the completion webhook.")
    modality = serializers.ChoiceField(Objective.Modality.choices, default="verbal",
                                       help_text="verbal only: visual objectives are refused (see the error).")
    next_required_objectives = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=MAX_OBJECTIVES, default=list,
        help_text="Objectives that follow once this one is done.")
    next_conditional_objectives = serializers.DictField(
        child=serializers.CharField(max_length=1000), default=dict,
        help_text="{objective name: condition}: the objective whose condition holds follows.")
    callback_url = OutboundURLField(max_length=2000, required=False, allow_blank=True, allow_null=True,
                                    help_text="Receives the completion webhook with the output variables.")

    def rename(self, data: dict) -> dict:
        # the hosted docs also write a single next objective as a string
        if "next_required_objective" in data:
            if data.get("next_required_objectives"):
                raise serializers.ValidationError({"next_required_objective": [
                    "send next_required_objective or next_required_objectives, not both"]})
            data = dict(data)
            single = data.pop("next_required_objective")
            data["next_required_objectives"] = [single] if isinstance(single, str) and single else single or []
        return data

    def validate_modality(self, value: str) -> str:
        if value == Objective.Modality.VISUAL:
            raise serializers.ValidationError(VISUAL_REFUSED)
        return value

    def validate_output_variables(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("each variable may be named once")
        return value

    def validate_next_conditional_objectives(self, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_OBJECTIVES:
            raise serializers.ValidationError(f"at most {MAX_OBJECTIVES} branches")
        return value

    def validate(self, attrs):
        if attrs.get("next_required_objectives") and attrs.get("next_conditional_objectives"):
            raise serializers.ValidationError(
                "an objective has next_required_objectives or next_conditional_objectives, not both")
        attrs["callback_url"] = attrs.get("callback_url") or ""
        return attrs


class ObjectivesInputSerializer(StrictSerializer):
    """``POST /v2/objectives``: ``{"data": [objective, ...]}`` (a bare array is accepted too)."""

    data = serializers.ListField(child=ObjectiveInputSerializer(), min_length=1, max_length=MAX_OBJECTIVES)


def objectives_input(data: Any) -> list[dict[str, Any]]:
    """The objectives of a body (``{"data": [...]}`` or a bare ``[...]``), each checked on its own,
    or ``InvalidError`` naming the field (``data.2.next_required_objectives``)."""
    if isinstance(data, list):
        data = {"data": data}
    return validated(ObjectivesInputSerializer(data=data))["data"]
