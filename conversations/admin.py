"""Conversations in the Django admin: the transcript and events inline, the end action,
secrets (the meeting token) read-only and masked; writes go through ``conversations.services``."""
from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from conversations import services
from conversations.models import Conversation, ConversationEvent, Utterance
from conversations.views import duration_of, format_duration
from pals.stored_layers import mask_secrets


class UtteranceInline(admin.TabularInline):
    model = Utterance
    extra = 0
    can_delete = False
    fields = ("seconds_from_start", "role", "content", "interrupted", "turn_idx", "latency_summary")
    readonly_fields = fields
    ordering = ("seconds_from_start", "id")

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # the live session writes the transcript

    @admin.display(description="Latency")
    def latency_summary(self, u: Utterance) -> str:
        lat = u.latency or {}
        if not lat:
            return "—"
        parts = [f"{label} {lat[key]:.0f}" for key, label in (("turn_decided_ms", "turn"), ("llm_first_token_ms", "llm"),
                                                              ("tts_first_audio_ms", "tts"), ("u2u_ms", "u2u"))
                 if isinstance(lat.get(key), (int, float))]
        return " · ".join(parts) + " ms" if parts else "—"


class ConversationEventInline(admin.TabularInline):
    model = ConversationEvent
    extra = 0
    can_delete = False
    fields = ("timestamp", "message_type", "event_type", "short_properties")
    readonly_fields = fields
    ordering = ("timestamp", "id")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Properties")
    def short_properties(self, e: ConversationEvent) -> str:
        text = json.dumps(e.properties, ensure_ascii=False)
        return text if len(text) <= 200 else text[:200] + "…"


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation_name", "account", "pal", "face", "status", "duration", "shutdown_reason",
                    "created_at")
    list_filter = ("status", "test_mode", "audio_only", "require_auth", ("deleted_at", admin.EmptyFieldListFilter),
                   "created_at")
    search_fields = ("id", "conversation_name", "account__username", "pal__pal_name", "pal__id", "face__id")
    list_select_related = ("account", "pal", "face")
    date_hierarchy = "created_at"
    inlines = [UtteranceInline, ConversationEventInline]
    actions = ["end_conversations"]
    fieldsets = (
        (None, {"fields": ("id", "conversation_name", "account", "pal", "face", "status", "duration",
                           "shutdown_reason")}),
        ("Set-up", {"fields": ("conversational_context", "custom_greeting", "callback_url", "audio_only", "test_mode",
                               "require_auth", "token", "max_participants", "properties_pretty",
                               "document_retrieval_strategy")}),
        ("PAL at creation (secrets masked)", {"fields": ("snapshot",), "classes": ("collapse",)}),
        ("Results", {"fields": ("perception_analysis", "recording_file", "recording_duration")}),
        ("Times", {"fields": ("created_at", "started_at", "ended_at", "deleted_at", "session_channel")}),
    )
    readonly_fields = ("id", "conversation_name", "account", "pal", "face", "status", "duration", "shutdown_reason",
                       "conversational_context", "custom_greeting", "callback_url", "audio_only", "test_mode",
                       "require_auth", "token", "max_participants", "properties_pretty", "document_retrieval_strategy",
                       "snapshot", "created_at", "started_at", "ended_at", "deleted_at", "session_channel",
                       "perception_analysis", "recording_file", "recording_duration")

    def has_add_permission(self, request) -> bool:
        return False  # conversations are created over the API or with "Talk now"

    @admin.display(description="Duration")
    def duration(self, c: Conversation) -> str:
        return format_duration(duration_of(c))

    @admin.display(description="Meeting token")
    def token(self, c: Conversation) -> str:
        if not c.meeting_token:
            return "—"
        return "****" + c.meeting_token[-4:]

    @admin.display(description="Properties")
    def properties_pretty(self, c: Conversation) -> str:
        return format_html("<pre>{}</pre>", json.dumps(c.properties, indent=2))

    @admin.display(description="PAL snapshot")
    def snapshot(self, c: Conversation) -> str:
        snap = dict(c.pal_snapshot or {})
        if isinstance(snap.get("layers"), dict):
            snap["layers"] = mask_secrets(snap["layers"])
        return format_html("<pre>{}</pre>", json.dumps(snap, indent=2, ensure_ascii=False))

    @admin.action(description="End selected conversations")
    def end_conversations(self, request, queryset) -> None:
        ended = 0
        for c in queryset.filter(status=Conversation.Status.ACTIVE):
            services.conversation_end(conversation=c)
            ended += 1
        self.message_user(request, f"Ended {ended} conversation(s).", messages.SUCCESS)

    def delete_model(self, request, obj: Conversation) -> None:
        services.conversation_delete(conversation=obj, hard=True)

    def delete_queryset(self, request, queryset) -> None:
        for c in queryset:
            services.conversation_delete(conversation=c, hard=True)


@admin.register(Utterance)
class UtteranceAdmin(admin.ModelAdmin):
    list_display = ("conversation", "role", "short_content", "seconds_from_start", "interrupted", "u2u")
    list_filter = ("role", "interrupted")
    search_fields = ("content", "conversation__id", "inference_id")
    list_select_related = ("conversation",)
    readonly_fields = ("conversation", "role", "content", "inference_id", "turn_idx", "seconds_from_start", "duration",
                       "interrupted", "visual_context", "latency", "timestamp")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a transcript is a record: view only

    @admin.display(description="Content")
    def short_content(self, u: Utterance) -> str:
        return u.content if len(u.content) <= 80 else u.content[:80] + "…"

    @admin.display(description="First audio (ms)")
    def u2u(self, u: Utterance):
        value = (u.latency or {}).get("u2u_ms")
        return round(value) if isinstance(value, (int, float)) else None


@admin.register(ConversationEvent)
class ConversationEventAdmin(admin.ModelAdmin):
    list_display = ("conversation", "event_type", "message_type", "timestamp")
    list_filter = ("message_type", "event_type")
    search_fields = ("conversation__id", "event_type")
    list_select_related = ("conversation",)
    readonly_fields = ("conversation", "message_type", "event_type", "properties", "timestamp")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
