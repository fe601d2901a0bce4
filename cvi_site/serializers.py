"""Serializer pieces shared by every app's input validation, and ``validated()``, which turns a
serializer's verdict into plain data or the domain's ``InvalidError``."""
from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from cvi_site.domain import InvalidError


class StrictSerializer(serializers.Serializer):
    """Input that must be an object and may only hold the declared fields: an unknown one is a
    clear 400 naming it (a typo is caught instead of silently ignored)."""

    not_object_message = "the body must be a JSON object"
    unknown_label = "field(s)"

    def rename(self, data: dict) -> dict:
        """Map accepted aliases onto field names (legacy names)."""
        return data

    def unknown_message(self, unknown: list[str]) -> str:
        return f"unknown {self.unknown_label} {', '.join(unknown)}"

    def to_internal_value(self, data):
        if hasattr(data, "dict") and not isinstance(data, dict):  # a multipart QueryDict
            data = {k: data.get(k) for k in data}
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": [self.not_object_message]})
        data = self.rename(data)
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({"non_field_errors": [self.unknown_message(unknown)]})
        # DRF's CharField turns 0 into "0": a number where the schema says string is a mistake
        wrong = {name: ["must be a string"] for name, field in self.fields.items()
                 if isinstance(field, serializers.CharField) and name in data
                 and data[name] is not None and not isinstance(data[name], str)}
        if wrong:
            raise serializers.ValidationError(wrong)
        return super().to_internal_value(data)


class OutboundURLField(serializers.URLField):
    """A URL the server will fetch or call on the account's behalf (webhooks, media to train
    on): http(s) only, and no private address while ``ALLOW_PRIVATE_URLS`` is off, checked
    when it is saved rather than only when it is used."""

    def to_internal_value(self, data):
        from cvi_site.validators import outbound_url_problem

        value = super().to_internal_value(data)
        if value:
            problem = outbound_url_problem(value)
            if problem:
                raise serializers.ValidationError(problem)
        return value


class JsonPatchOperation(serializers.Serializer):
    """One operation of a JSON Patch body (RFC 6902), as every PATCH endpoint documents it
    (applied by ``cvi_site.patching``)."""

    op = serializers.ChoiceField(["add", "remove", "replace", "move", "copy", "test"])
    path = serializers.CharField(help_text="JSON Pointer, e.g. /layers/llm/model or /rules/0/pronunciation")
    value = serializers.JSONField(required=False)
    from_ = serializers.CharField(required=False, source="from")


def validated(serializer: serializers.Serializer) -> Any:
    """The serializer's validated data as plain Python, or ``InvalidError`` carrying its errors
    (field → messages, as plain dicts, lists and strings): what an edge hands a service."""
    if not serializer.is_valid():
        raise InvalidError(_plain(serializer.errors))
    return _plain(serializer.validated_data)


def _plain(value: Any) -> Any:
    """DRF's ReturnDict / OrderedDict / ReturnList / ErrorDetail as dict, list and str, in order."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, ErrorDetail):
        return str(value)
    return value
