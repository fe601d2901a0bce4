"""Reads of pronunciation dictionaries, always scoped to one account."""
from __future__ import annotations

import logging

from dataclasses import replace

from django.db.models import QuerySet

from conversations.realtime.config import PipelineConfig
from conversations.realtime.pronounce import Pronunciation
from pronunciations.models import PronunciationDictionary

logger = logging.getLogger(__name__)


def pronunciation_dictionary_list(*, account) -> QuerySet[PronunciationDictionary]:  # noqa: ANN001
    return PronunciationDictionary.objects.filter(account=account).order_by("-created_at")


def pronunciation_for(*, account_id: int | None, dictionary_id: str) -> Pronunciation:
    """The rules a call applies: the account's dictionary ``dictionary_id`` as it is now (none
    when it was deleted since the PAL linked it: deleting unlinks it from the PALs, but a
    conversation created before keeps its PAL snapshot)."""
    if not dictionary_id:
        return Pronunciation()
    found = PronunciationDictionary.objects.filter(pk=dictionary_id, account_id=account_id).first()
    if found is None:
        logger.warning("pronunciation dictionary %s is gone: the call speaks without it", dictionary_id)
        return Pronunciation()
    return Pronunciation.from_dicts(found.rules, dictionary_id=found.pk)


def pipeline_with_pronunciation(pipeline: PipelineConfig, *, account_id: int | None) -> PipelineConfig:
    """``pipeline`` with the rules of its PAL's dictionary as they are now: a call reads them
    when it starts, so an edit of the rules reaches every PAL linking it from its next call on."""
    dictionary_id = pipeline.tts.pronunciation_dictionary_id
    if not dictionary_id:
        return pipeline
    rules = pronunciation_for(account_id=account_id, dictionary_id=dictionary_id)
    return replace(pipeline, tts=replace(pipeline.tts, pronunciation=rules))


def pronunciation_warnings(*, account_id: int | None, layers: dict) -> list[str]:
    """What a PAL's TTS layer cannot do with its dictionary: IPA rules its engine cannot
    pronounce (the words are spoken as written). Shown in the PAL's API response."""
    from conversations.realtime.engines.registry import canonical_name
    from conversations.realtime.pronounce import unpronounceable

    tts = (layers or {}).get("tts") or {}
    dictionary_id = tts.get("pronunciation_dictionary_id")
    if not dictionary_id:
        return []
    engine = canonical_name("tts", tts.get("tts_engine") or None)
    rules = unpronounceable(engine, pronunciation_for(account_id=account_id, dictionary_id=dictionary_id))
    if not rules:
        return []
    examples = ", ".join(repr(r.text) for r in rules[:3]) + (", …" if len(rules) > 3 else "")
    return [f"layers.tts.pronunciation_dictionary_id: the {engine} TTS engine takes no phonemes, so the "
            f"{len(rules)} IPA rule(s) of {dictionary_id} ({examples}) are not applied and those words are "
            "spoken as written; use espeak-ng, piper or azure, or write them as alias rules"]
