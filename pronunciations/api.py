"""REST v2: /v2/pronunciation-dictionaries (hosted shapes): create, list, get, JSON Patch, delete.

The input serializers (a rule, the rules, a dictionary) and ``pronunciation_dictionary_input()``,
which checks a body before ``pronunciations.services`` stores it, live here too."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from conversations.realtime import pronounce
from cvi_site.api import AccountScopedViewSet, paginate
from cvi_site.parsers import DepthLimitedJSONParser, JSONPatchParser
from cvi_site.serializers import JsonPatchOperation, StrictSerializer, validated
from pronunciations import selectors, services
from pronunciations.models import PronunciationDictionary


class JSONBooleanField(serializers.BooleanField):
    """true or false, as JSON writes them (not "yes", 1 or "true": the schema says boolean)."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class PronunciationRuleSerializer(StrictSerializer):
    """One rule (hosted shape); ``case_sensitive`` and ``word_boundaries`` as the hosted defaults."""

    not_object_message = "each rule must be an object"
    text = serializers.CharField(max_length=pronounce.MAX_TEXT_LENGTH,
                                 help_text="The written word or phrase to match.")
    pronunciation = serializers.CharField(
        max_length=pronounce.MAX_PRONUNCIATION_LENGTH,
        help_text="alias: the text to say instead; ipa: the IPA transcription (e.g. ˈbɑju).")
    type = serializers.ChoiceField(pronounce.RULE_TYPES, help_text="alias (say other text) or ipa (say these phonemes).")
    case_sensitive = JSONBooleanField(required=False, default=False)
    word_boundaries = JSONBooleanField(required=False, default=True,
                                               help_text="Match whole words only (default true).")

    def validate_text(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("must not be empty")
        return value.strip()

    def validate(self, attrs):
        if attrs["type"] == "ipa":
            problem = pronounce.ipa_problem(attrs["pronunciation"])
            if problem:
                raise serializers.ValidationError({"pronunciation": problem})
        elif not attrs["pronunciation"].strip():
            raise serializers.ValidationError({"pronunciation": "must not be empty"})
        attrs["pronunciation"] = attrs["pronunciation"].strip()
        return attrs


class PronunciationRulesField(serializers.ListField):
    child = PronunciationRuleSerializer()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=pronounce.MAX_RULES, **kwargs)

    def to_internal_value(self, data):
        rules = super().to_internal_value(data)
        seen: dict[str, int] = {}
        for i, rule in enumerate(rules):
            key = rule["text"] if rule["case_sensitive"] else rule["text"].casefold()
            if key in seen:
                raise serializers.ValidationError(
                    {i: {"text": [f"{rule['text']!r} is already the text of rule {seen[key]}: duplicate texts are "
                                  "not allowed"]}})
            seen[key] = i
        return [dict(r) for r in rules]


class PronunciationDictionaryInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=pronounce.MAX_NAME_LENGTH,
                                 help_text=f"Name of the dictionary (≤ {pronounce.MAX_NAME_LENGTH} characters).")
    rules = PronunciationRulesField(required=False, help_text=f"The rules (at most {pronounce.MAX_RULES}); texts must differ.")

    def validate_name(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("must not be empty")
        return value.strip()


def pronunciation_dictionary_input(data: Any) -> dict[str, Any]:
    """A dictionary's ``name`` and ``rules`` (stripped, hosted defaults filled), or ``InvalidError``
    naming the fields (``rules.2.pronunciation``)."""
    return validated(PronunciationDictionaryInputSerializer(data=data))


def render_dictionary(dictionary: PronunciationDictionary) -> dict:
    rules = [dict(r) for r in dictionary.rules]
    return {
        "pronunciation_dictionary_id": dictionary.pk,
        "name": dictionary.name,
        "rules": rules,
        "rules_count": len(rules),
        "created_at": dictionary.created_at.isoformat(),
        "updated_at": dictionary.updated_at.isoformat(),
    }


class PronunciationRuleOutputSerializer(serializers.Serializer):
    text = serializers.CharField()
    pronunciation = serializers.CharField()
    type = serializers.ChoiceField(["alias", "ipa"])
    case_sensitive = serializers.BooleanField()
    word_boundaries = serializers.BooleanField()


class PronunciationDictionaryOutputSerializer(serializers.Serializer):
    pronunciation_dictionary_id = serializers.CharField()
    name = serializers.CharField()
    rules = PronunciationRuleOutputSerializer(many=True)
    rules_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(many=False)
class PronunciationDictionaryListSerializer(serializers.Serializer):
    data = PronunciationDictionaryOutputSerializer(many=True)
    total_count = serializers.IntegerField()


class PronunciationDictionaryViewSet(AccountScopedViewSet):
    parser_classes = [DepthLimitedJSONParser, JSONPatchParser]
    lookup_field = "dictionary_id"
    lookup_value_regex = "[^/]+"
    not_found = "Pronunciation dictionary not found"

    def get_queryset(self):
        return selectors.pronunciation_dictionary_list(account=self.request.user)

    @extend_schema(parameters=[OpenApiParameter("limit", int), OpenApiParameter("page", int)],
                   responses=PronunciationDictionaryListSerializer)
    def list(self, request):
        return paginate(request, self.get_queryset(), render_dictionary)

    @extend_schema(request=PronunciationDictionaryInputSerializer,
                   responses={200: PronunciationDictionaryOutputSerializer})
    def create(self, request):
        dictionary = services.pronunciation_dictionary_create(account=request.user,
                                                              data=pronunciation_dictionary_input(request.data))
        return Response(render_dictionary(dictionary), status=status.HTTP_200_OK)

    @extend_schema(responses=PronunciationDictionaryOutputSerializer)
    def retrieve(self, request, dictionary_id=None):
        return Response(render_dictionary(self.get_object()))

    @extend_schema(request=JsonPatchOperation(many=True),
                   responses=PronunciationDictionaryOutputSerializer,
                   description="RFC 6902 JSON Patch of /name and /rules, applied atomically; PALs that "
                               "link the dictionary speak with the new rules from their next call.")
    def partial_update(self, request, dictionary_id=None):
        dictionary = services.pronunciation_dictionary_patch(dictionary=self.get_object(), operations=request.data,
                                                             validate=pronunciation_dictionary_input)
        return Response(render_dictionary(dictionary))

    @extend_schema(responses={204: None}, description="Deletes it and unlinks it from the PALs that use it.")
    def destroy(self, request, dictionary_id=None):
        services.pronunciation_dictionary_delete(dictionary=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
