"""Reads for conversations, always scoped to the account."""
from __future__ import annotations

from django.db.models import QuerySet

from conversations.models import Conversation, ConversationEvent, Utterance
from cvi_site.models import Account


def conversation_list(*, account: Account, status: str | None = None) -> QuerySet[Conversation]:
    qs = Conversation.objects.select_related("pal", "face").filter(account=account, deleted_at__isnull=True)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at")


def conversation_get_public(*, conversation_id: str) -> Conversation | None:
    """For the conversation page and its WebSocket (no account: the id and token authorise)."""
    return Conversation.objects.select_related("pal", "face", "account").filter(pk=conversation_id).first()


def conversation_events(*, conversation: Conversation) -> QuerySet[ConversationEvent]:
    return conversation.events.order_by("timestamp", "id")


def conversation_utterances(*, conversation: Conversation) -> QuerySet[Utterance]:
    return conversation.utterances.order_by("seconds_from_start", "id")


def conversation_url(conversation: Conversation, *, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/c/{conversation.pk}/"
