"""Pronunciation dictionaries (hosted shape): an account's rules for how its PALs' voices say
words. A PAL's TTS layer links one by ``pronunciation_dictionary_id``; the rules are read when a
call starts (``conversations.live.config``) and applied by ``conversations.realtime.pronounce``."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from cvi_site.ids import new_id


def pronunciation_dictionary_id() -> str:
    return new_id("pd_")


class PronunciationDictionary(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=pronunciation_dictionary_id, editable=False)
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="pronunciation_dictionaries")
    name = models.CharField(max_length=255)
    #: [{text, pronunciation, type alias|ipa, case_sensitive, word_boundaries}], validated by the API
    #: (pronunciations.api.PronunciationRuleSerializer) and applied in this order
    rules = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "pronunciation dictionary"
        verbose_name_plural = "pronunciation dictionaries"

    def __str__(self) -> str:
        return self.name or self.id
