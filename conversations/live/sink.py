"""Where a live call's events go in the database: the sink port of ``ConversationSession``.

``EventStore`` is implemented over ``conversations.services`` (synchronous: the session calls it
through ``database_sync_to_async``, from one writer task, so the transcript keeps its order).
It turns the pipeline's events into what the API shows: utterances with their latency record,
the event log, the start and end of the call, the recording and the perception analysis.
"""
from __future__ import annotations

from typing import Any

from conversations.realtime.events import REPLICA_STOPPED, TURN_METRICS, UTTERANCE, UTTERANCE_STREAMING

#: events not stored as they happen (captions are too many; metrics are stored on their turn)
NOT_STORED = {UTTERANCE_STREAMING, TURN_METRICS}
PERCEPTION_TOOL_CALL = "conversation.perception_tool_call"


class EventStore:
    """One conversation's events into the database (call from a thread, in order)."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        #: latency records by inference id, and how each replica turn stopped, until its utterance
        self._metrics: dict[Any, dict] = {}

    def _conversation(self):  # noqa: ANN202 - a Conversation or None
        from conversations.models import Conversation

        return Conversation.objects.filter(pk=self.conversation_id).first()

    def mark_started(self, channel: str) -> None:
        from conversations.services import conversation_mark_started

        conversation_mark_started(conversation_id=self.conversation_id, session_channel=channel)

    def end(self, reason: str) -> None:
        from conversations.services import conversation_end

        conv = self._conversation()
        if conv is not None:
            conversation_end(conversation=conv, reason=reason)

    def refuse(self, code: str, reason: str) -> None:
        """A join refused before the call started: the error is logged and the conversation ends."""
        from conversations import services

        conv = self._conversation()
        if conv is None:
            return
        services.event_record(conversation=conv, message_type="system", event_type="system.error",
                              properties={"code": code, "reason": reason})
        services.conversation_end(conversation=conv, reason=services.Shutdown.SERVER_AT_CAPACITY)

    def store_recording(self, recording: Any, base_url: str) -> None:  # noqa: ANN401 - a recorder result
        from conversations.services import conversation_set_recording

        conversation_set_recording(conversation_id=self.conversation_id, path=recording.path,
                                   duration_s=recording.duration_s, base_url=base_url)

    def store_perception_analysis(self, analysis: str) -> None:
        from conversations.services import conversation_set_perception_analysis

        conversation_set_perception_analysis(conversation_id=self.conversation_id, analysis=analysis)

    def store_event(self, event: dict[str, Any], seconds: float) -> None:
        """One pipeline event, ``seconds`` after the call started."""
        from conversations import services

        event_type = event.get("event_type", "")
        props = event.get("properties") or {}
        if event_type == PERCEPTION_TOOL_CALL:
            # camera frames are never stored (no recording): keep how many there were
            props = {**{k: v for k, v in props.items() if k != "frames"}, "frames_count": len(props.get("frames") or ())}
        inference_id = event.get("inference_id") or ""
        metrics = self._metrics
        if event_type == TURN_METRICS:
            record = dict(props)
            metrics[inference_id] = record
            services.utterance_set_latency(conversation_id=self.conversation_id, inference_id=inference_id,
                                           latency=record)
            return
        if event_type == REPLICA_STOPPED:
            # The replica's utterance follows with the same inference id; keep how it ended.
            metrics[("stopped", inference_id)] = props
        if event_type == UTTERANCE and (props.get("speech") or "").strip():
            role = "assistant" if props.get("role") in ("replica", "assistant") else "user"
            stopped = metrics.pop(("stopped", inference_id), {}) if role == "assistant" else {}
            duration = stopped.get("duration")
            services.utterance_record(
                conversation_id=self.conversation_id, role=role, content=props.get("speech", "") or "",
                inference_id=inference_id, turn_idx=int(event.get("turn_idx") or 0),
                seconds_from_start=max(0.0, seconds - (duration or 0.0)), duration=duration,
                interrupted=bool(stopped.get("interrupted")), visual_context=props.get("visual_context") or "",
                latency=metrics.get(inference_id, {}) if role == "assistant" else {},
            )
        if event_type in NOT_STORED:
            return
        conv = self._conversation()
        if conv is None:
            return
        services.event_record(
            conversation=conv, message_type=event.get("message_type", "conversation"), event_type=event_type,
            properties={**props, **({"inference_id": inference_id} if inference_id else {})},
        )
