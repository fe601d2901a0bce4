"""Writes for pronunciation dictionaries. The REST API and the admin come through here.

A dictionary's name and rules are checked at the edge (``pronunciations.api``):
``pronunciation_dictionary_create`` takes the validated values, ``pronunciation_dictionary_patch``
is handed that check as ``validate`` for the patched document. A broken rule is a
``cvi_site.domain`` error.
"""
from __future__ import annotations

import copy
from typing import Any

from django.db import transaction

from cvi_site.domain import ApplicationError, Validate
from cvi_site.patching import apply_operations, check_operations
from cvi_site.models import Account
from pronunciations.models import PronunciationDictionary


@transaction.atomic
def pronunciation_dictionary_create(*, account: Account, data: dict[str, Any]) -> PronunciationDictionary:
    """A new dictionary from the validated values (``pronunciation_dictionary_input``)."""
    dictionary = PronunciationDictionary(account=account, name=data["name"], rules=data.get("rules", []))
    dictionary.full_clean()
    dictionary.save()
    return dictionary


def pronunciation_dictionary_document(dictionary: PronunciationDictionary) -> dict[str, Any]:
    """What a JSON Patch applies to: the mutable fields (hosted: ``name`` and ``rules``)."""
    return {"name": dictionary.name, "rules": copy.deepcopy(list(dictionary.rules))}


@transaction.atomic
def pronunciation_dictionary_patch(*, dictionary: PronunciationDictionary, operations: Any,
                                   validate: Validate) -> PronunciationDictionary:
    """Apply an RFC 6902 JSON Patch to ``/name`` and ``/rules`` atomically: a failing operation,
    or a result that is not a valid dictionary (``validate``: ``pronunciation_dictionary_input``),
    leaves it unchanged. PALs linking it speak with the new rules from their next call on."""
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
    values = validate(patched)
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
