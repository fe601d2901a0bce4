"""Conversations, their transcript (utterances) and their events."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from cvi_site.ids import conversation_id


class Conversation(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        ENDED = "ended"

    id = models.CharField(primary_key=True, max_length=32, default=conversation_id, editable=False)
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    pal = models.ForeignKey("pals.Pal", null=True, on_delete=models.SET_NULL, related_name="conversations")
    face = models.ForeignKey("faces.Face", null=True, on_delete=models.SET_NULL, related_name="conversations")
    conversation_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    callback_url = models.URLField(max_length=2000, blank=True)
    #: this server's URL for links the call emits (a recording's storage_uri): PUBLIC_URL, else the
    #: host of the authenticated request that created the conversation, never a participant's
    public_base_url = models.CharField(max_length=2000, blank=True, default="")
    conversational_context = models.TextField(blank=True)
    custom_greeting = models.TextField(blank=True)
    # The LLM writes the opening line from the prompt and context (instead of a fixed greeting).
    enable_dynamic_greeting = models.BooleanField(default=False)
    audio_only = models.BooleanField(default=False)
    test_mode = models.BooleanField(default=False)
    require_auth = models.BooleanField(default=False)
    meeting_token = models.CharField(max_length=64, blank=True)
    max_participants = models.PositiveSmallIntegerField(null=True, blank=True)
    memory_stores = models.JSONField(default=list, blank=True)
    document_ids = models.JSONField(default=list, blank=True)
    document_tags = models.JSONField(default=list, blank=True)
    document_retrieval_strategy = models.CharField(max_length=16, blank=True)
    # Normalised properties with defaults applied (see conversations.services).
    properties = models.JSONField(default=dict, blank=True)
    # The PAL configuration as it was when the conversation was created (a PAL edited or
    # deleted later does not change a conversation that already exists).
    pal_snapshot = models.JSONField(default=dict, blank=True)
    shutdown_reason = models.CharField(max_length=100, blank=True)
    perception_analysis = models.TextField(blank=True)
    # With properties.enable_recording: the call's file (relative to DATA_DIR) and its length.
    recording_file = models.CharField(max_length=300, blank=True)
    recording_duration = models.FloatField(null=True, blank=True)
    # The channel of the server process that holds the live session (for REST end/interrupt).
    session_channel = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Soft delete: hidden from the API, transcript kept (``?hard=true`` erases everything).
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["account", "status"])]

    def __str__(self) -> str:
        return self.conversation_name or self.id


class Utterance(models.Model):
    """One transcript entry, stored as it happens."""

    class Role(models.TextChoices):
        SYSTEM = "system"
        USER = "user"
        ASSISTANT = "assistant"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="utterances")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField()
    inference_id = models.CharField(max_length=64, blank=True)
    turn_idx = models.PositiveIntegerField(default=0)
    seconds_from_start = models.FloatField(default=0.0)
    duration = models.FloatField(null=True, blank=True)
    interrupted = models.BooleanField(default=False)
    visual_context = models.TextField(blank=True)
    # Per-turn latency record (ms): turn_wait, stt, llm_first_token, first_phrase, tts_first_audio, total.
    latency = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "seconds_from_start", "id"]


class ConversationEvent(models.Model):
    """Every system/application/protocol event of a conversation, in order."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="events")
    message_type = models.CharField(max_length=16)
    event_type = models.CharField(max_length=100)
    properties = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "timestamp", "id"]
