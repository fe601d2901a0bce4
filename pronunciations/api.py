"""REST v2: /v2/pronunciation-dictionaries (hosted shapes): create, list, get, JSON Patch, delete."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from cvi_site.api import AccountScopedViewSet, paginate
from cvi_site.parsers import DepthLimitedJSONParser, JSONPatchParser
from pronunciations import selectors, services
from pronunciations.models import PronunciationDictionary


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


class PronunciationDictionaryPatchOperation(serializers.Serializer):
    op = serializers.ChoiceField(["add", "remove", "replace", "move", "copy", "test"])
    path = serializers.CharField(help_text="JSON Pointer under /name or /rules, e.g. /rules/0/pronunciation")
    value = serializers.JSONField(required=False)
    from_ = serializers.CharField(required=False, source="from")


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

    @extend_schema(request=services.PronunciationDictionaryInputSerializer,
                   responses={200: PronunciationDictionaryOutputSerializer})
    def create(self, request):
        dictionary = services.pronunciation_dictionary_create(account=request.user, data=request.data)
        return Response(render_dictionary(dictionary), status=status.HTTP_200_OK)

    @extend_schema(responses=PronunciationDictionaryOutputSerializer)
    def retrieve(self, request, dictionary_id=None):
        return Response(render_dictionary(self.get_object()))

    @extend_schema(request=PronunciationDictionaryPatchOperation(many=True),
                   responses=PronunciationDictionaryOutputSerializer,
                   description="RFC 6902 JSON Patch of /name and /rules, applied atomically; PALs that "
                               "link the dictionary speak with the new rules from their next call.")
    def partial_update(self, request, dictionary_id=None):
        dictionary = services.pronunciation_dictionary_patch(dictionary=self.get_object(), operations=request.data)
        return Response(render_dictionary(dictionary))

    @extend_schema(responses={204: None}, description="Deletes it and unlinks it from the PALs that use it.")
    def destroy(self, request, dictionary_id=None):
        services.pronunciation_dictionary_delete(dictionary=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
