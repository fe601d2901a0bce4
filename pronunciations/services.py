"""Writes for pronunciation dictionaries. The REST API and the admin come through here."""
from __future__ import annotations

import copy
from typing import Any

from django.db import transaction
from rest_framework import serializers

from conversations.realtime import pronounce
from cvi_site.errors import ApplicationError
from cvi_site.patching import apply_operations, check_operations
from cvi_site.models import Account
from cvi_site.serializers import StrictSerializer
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


def _validated(data: Any) -> dict[str, Any]:
    serializer = PronunciationDictionaryInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


@transaction.atomic
def pronunciation_dictionary_create(*, account: Account, data: Any) -> PronunciationDictionary:
    values = _validated(data)
    dictionary = PronunciationDictionary(account=account, name=values["name"], rules=values.get("rules", []))
    dictionary.full_clean()
    dictionary.save()
    return dictionary


def pronunciation_dictionary_document(dictionary: PronunciationDictionary) -> dict[str, Any]:
    """What a JSON Patch applies to: the mutable fields (hosted: ``name`` and ``rules``)."""
    return {"name": dictionary.name, "rules": copy.deepcopy(list(dictionary.rules))}


@transaction.atomic
def pronunciation_dictionary_patch(*, dictionary: PronunciationDictionary, operations: Any) -> PronunciationDictionary:
    """Apply an RFC 6902 JSON Patch to ``/name`` and ``/rules`` atomically: a failing operation,
    or a result that is not a valid dictionary, leaves it unchanged. PALs linking it speak with
    the new rules from their next call on."""
    check_operations(operations, example='[{"op": "replace", "path": "/name", "value": "Brand terms"}]')
    for i, op in enumerate(operations):
        if not isinstance(op, dict):
            raise ApplicationError(f"operation {i}: must be an object with op and path")
        for key in ("path", "from"):
            path = op.get(key)
            if isinstance(path, str) and path.split("/")[1:2] not in (["name"], ["rules"]):
                raise ApplicationError(f"operation {i}: {key} {path!r}: only /name and /rules (and what is "
                                       "inside /rules) can be changed")
    dictionary = PronunciationDictionary.objects.select_for_update().get(pk=dictionary.pk)
    patched = apply_operations(pronunciation_dictionary_document(dictionary), operations)
    values = _validated(patched)
    dictionary.name = values["name"]
    dictionary.rules = values.get("rules", [])
    dictionary.full_clean()
    dictionary.save()
    return dictionary


@transaction.atomic
def pronunciation_dictionary_delete(*, dictionary: PronunciationDictionary) -> list[str]:
    """Delete it and unlink it from the account's PALs (as the hosted API does: their TTS layer
    loses ``pronunciation_dictionary_id``); returns the ids of the PALs it was removed from.
    Conversations created before keep their PAL snapshot but find no rules when they start."""
    from pals.models import Pal

    unlinked = []
    for pal in Pal.objects.select_for_update().filter(account_id=dictionary.account_id,
                                                      layers__tts__pronunciation_dictionary_id=dictionary.pk):
        del pal.layers["tts"]["pronunciation_dictionary_id"]
        pal.save(update_fields=["layers", "updated_at"])
        unlinked.append(pal.pk)
    dictionary.delete()
    return unlinked


def check_pronunciation_dictionary_id(*, account: Account | None, dictionary_id: str) -> None:
    """A PAL may only link a dictionary of its own account."""
    if account is None or not PronunciationDictionary.objects.filter(pk=dictionary_id, account=account).exists():
        raise ApplicationError(f"layers.tts.pronunciation_dictionary_id: no pronunciation dictionary {dictionary_id!r}")
