"""The webhooks a conversation's events send: the documented conversation events to the
conversation's ``callback_url``, an objective's completion or a guardrail's violation to the
``callback_url`` of that objective or guardrail (as the call's PAL snapshot holds it)."""
from __future__ import annotations

from typing import Any

from conversations.models import Conversation, ConversationEvent
from cvi_site.webhooks import webhook_send

#: events sent to the conversation's callback_url
WEBHOOK_EVENTS = {
    "system.replica_joined", "system.shutdown", "application.transcription_ready",
    "application.recording_ready", "application.perception_analysis",
}

#: events of a call whose webhook goes to the URL of the objective or guardrail that caused them
#: (the snapshot's ``callback_url`` of that item, not the conversation's)
ITEM_WEBHOOKS = {
    # event in the call -> (webhook event_type, snapshot key, item key, property naming the item)
    "conversation.objective.completed": ("application.objective_completed", "objectives", "objective_name",
                                         "objective_name"),
    "conversation.guardrail.triggered": ("application.guardrail_triggered", "guardrails", "guardrail_name",
                                         "guardrail"),
}


def item_webhook_send(*, conversation: Conversation, event: ConversationEvent) -> None:
    """The webhook of an objective's completion or a guardrail's violation, to the ``callback_url``
    of that objective or guardrail as the conversation's PAL snapshot holds it.
    Objectives: {conversation_id, objective_name, output_variables} (NOTFOUND for the missing);
    guardrails: {conversation_id, properties {guardrail, guardrail_uuid, reason}}."""
    webhook_type, snap_key, item_key, prop = ITEM_WEBHOOKS[event.event_type]
    props = event.properties or {}
    snap = (conversation.pal_snapshot or {}).get(snap_key) or {}
    items = snap.get("data") if isinstance(snap, dict) else snap
    item = next((i for i in items or () if i.get(item_key) == props.get(prop)), None)
    url = (item or {}).get("callback_url") or ""
    if not url:
        return
    payload: dict[str, Any] = {"conversation_id": conversation.pk, "event_type": webhook_type,
                               "message_type": "application", "timestamp": event.timestamp.isoformat()}
    if snap_key == "objectives":
        payload.update(objective_name=props.get("objective_name"), output_variables=props.get("output_variables") or {},
                       properties={"objective_name": props.get("objective_name"),
                                   "output_variables": props.get("output_variables") or {}})
    else:
        payload["properties"] = {k: props.get(k) for k in ("guardrail", "guardrail_uuid", "reason", "role")}
    webhook_send(url=url, event_type=webhook_type, subject_id=conversation.pk, account_id=conversation.account_id,
                 payload=payload)


def event_webhook_send(*, conversation: Conversation | str, event: ConversationEvent) -> None:
    """The webhook a just-recorded event sends, if its type sends one (``conversation`` may be the
    row, or its id when the caller has no row at hand)."""
    if event.event_type not in ITEM_WEBHOOKS and event.event_type not in WEBHOOK_EVENTS:
        return
    conv = conversation if isinstance(conversation, Conversation) else Conversation.objects.get(pk=conversation)
    if event.event_type in ITEM_WEBHOOKS:
        item_webhook_send(conversation=conv, event=event)
    elif conv.callback_url:
        webhook_send(url=conv.callback_url, event_type=event.event_type, subject_id=conv.pk,
                     account_id=conv.account_id, payload={
            "conversation_id": conv.pk, "event_type": event.event_type, "message_type": event.message_type,
            "timestamp": event.timestamp.isoformat(), "properties": event.properties,
        })
