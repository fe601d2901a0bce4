"""Where a live call's events go in the database: the sink port of ``ConversationSession``.

``EventStore`` is implemented over ``conversations.services`` (synchronous: the session calls it
through ``database_sync_to_async``, from one writer task, so the transcript keeps its order).
It turns the pipeline's typed events into what the API shows: utterances with their latency record,
the event log, the start and end of the call, the recording and the perception analysis.
"""
from __future__ import annotations

from typing import Any

from conversations.realtime.events import (Event, PerceptionToolCall, ReplicaStoppedSpeaking, TurnMetricsReady,
                                           Utterance, UtteranceStreaming)

#: events not in the event log (captions are too many; latency records are stored on their turn)
NOT_STORED = (UtteranceStreaming, TurnMetricsReady)


class EventStore:
    """One conversation's events into the database (call from a thread, in order)."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        #: latency records by inference id, and how each replica turn stopped, until its utterance
        self._metrics: dict[str, dict[str, Any]] = {}
        self._stopped: dict[str, ReplicaStoppedSpeaking] = {}

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

    def store_event(self, event: Event, seconds: float) -> None:
        """One pipeline event, ``seconds`` after the call started."""
        from conversations import services

        inference_id = event.inference_id or ""
        if isinstance(event, TurnMetricsReady):  # stored on its turn, not in the event log
            record = event.metrics.as_dict()
            self._metrics[inference_id] = record
            services.utterance_set_latency(conversation_id=self.conversation_id, inference_id=inference_id,
                                           latency=record)
            return
        if isinstance(event, ReplicaStoppedSpeaking):
            # The replica's utterance follows with the same inference id; keep how it ended.
            self._stopped[inference_id] = event
        if isinstance(event, Utterance) and event.speech.strip():
            self._store_utterance(event, seconds)
        if isinstance(event, NOT_STORED):
            return
        props = event.properties()
        if isinstance(event, PerceptionToolCall):
            # camera frames are never stored (no recording): keep how many there were
            props = {**{k: v for k, v in props.items() if k != "frames"}, "frames_count": len(event.frames)}
        conv = self._conversation()
        if conv is None:
            return
        services.event_record(
            conversation=conv, message_type=event.message_type, event_type=event.name,
            properties={**props, **({"inference_id": inference_id} if inference_id else {})},
        )

    def _store_utterance(self, event: Utterance, seconds: float) -> None:
        from conversations import services

        inference_id = event.inference_id or ""
        assistant = event.role in ("replica", "assistant")
        stopped = self._stopped.pop(inference_id, None) if assistant else None
        duration = stopped.duration if stopped is not None else None
        services.utterance_record(
            conversation_id=self.conversation_id, role="assistant" if assistant else "user", content=event.speech,
            inference_id=inference_id, turn_idx=int(event.turn_idx or 0),
            seconds_from_start=max(0.0, seconds - (duration or 0.0)), duration=duration,
            interrupted=bool(stopped is not None and stopped.interrupted), visual_context=event.visual_context,
            latency=self._metrics.get(inference_id, {}) if assistant else {},
        )
