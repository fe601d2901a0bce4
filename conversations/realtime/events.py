"""What happens in a call, as typed domain events (the latency record of a reply is metrics.py).

The realtime core reports each happening as an :class:`Event` subclass with typed fields
(:class:`Utterance`, :class:`ReplicaStoppedSpeaking`, :class:`GuardrailTriggered` …); each class
declares once its protocol name (``name``) and message type. :class:`EventEmitter` stamps an
event with its ``seq`` (one more per event of the session) and ``timestamp`` (``Clock.time()``,
epoch s) and hands it to the sink, which must not block.

Nothing in the core makes protocol JSON: the envelope of shared/API.md is made at the edge
(:func:`.protocol.to_wire`, used by the session for the data channel and WebSocket, and by the
benchmark harness); the event log and webhooks are written from the typed event by the
session's store (``conversations.live.sink``). ``properties()`` is the event's payload: its
fields (under their ``wire_name`` where the protocol's name is taken), less the envelope, less
those marked ``wire=False``; a field marked ``omit_empty`` is left out when empty, one marked
``flatten`` is merged in.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .clock import Clock
from .metrics import TurnMetrics

logger = logging.getLogger(__name__)

#: how long after a decided turn its reply may stay silent before :class:`ReplicaThinking`
THINKING_AFTER_S = 1.2
#: the message type of an event kept from the client (stored and sent to webhooks only)
INTERNAL = "internal"
_ENVELOPE = frozenset({"inference_id", "turn_idx", "seq", "timestamp"})


def _omit_empty() -> Any:  # noqa: ANN401 - a dataclass field
    return field(default="", metadata={"omit_empty": True})


@dataclass(frozen=True, kw_only=True)
class Event:
    """One thing that happened in a call. ``seq`` and ``timestamp`` are set by the emitter."""

    name: ClassVar[str]
    kind: ClassVar[str] = "conversation"  # the protocol's message_type
    inference_id: str | None = None
    turn_idx: int | None = None
    seq: int | None = None
    timestamp: float | None = None

    @property
    def message_type(self) -> str:
        return self.kind

    def properties(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in _ENVELOPE or f.metadata.get("wire") is False:
                continue
            value = getattr(self, f.name)
            if f.metadata.get("omit_empty") and not value:
                continue
            if f.metadata.get("flatten"):
                out.update(value)
            else:
                out[f.metadata.get("wire_name", f.name)] = value
        return out


# ---------------------------------------------------------------------------- the user
@dataclass(frozen=True, kw_only=True)
class UserStartedSpeaking(Event):
    name = "conversation.user.started_speaking"


@dataclass(frozen=True, kw_only=True)
class UserStoppedSpeaking(Event):
    name = "conversation.user.stopped_speaking"


# ---------------------------------------------------------------------------- words
@dataclass(frozen=True, kw_only=True)
class UtteranceStreaming(Event):
    """Closed captions: the words so far of a user or replica turn (``final`` at its end)."""

    name = "conversation.utterance.streaming"
    role: str  # user | replica
    speech: str
    final: bool = False
    is_interrupted: bool = False


@dataclass(frozen=True, kw_only=True)
class Utterance(Event):
    """A whole turn: what the user said, or what the replica actually said (cut where it was
    interrupted). A user's turn carries the perception's ``visual_context`` when there is one."""

    name = "conversation.utterance"
    role: str  # user | replica
    speech: str
    visual_context: str = _omit_empty()


# ---------------------------------------------------------------------------- the replica
@dataclass(frozen=True, kw_only=True)
class ReplicaStartedSpeaking(Event):
    name = "conversation.replica.started_speaking"


@dataclass(frozen=True, kw_only=True)
class ReplicaStoppedSpeaking(Event):
    name = "conversation.replica.stopped_speaking"
    duration: float
    interrupted: bool


@dataclass(frozen=True, kw_only=True)
class ReplicaThinking(Event):
    """OpenCVI's extension: the reply to a decided turn has not started to play
    ``THINKING_AFTER_S`` after the turn was decided (a busy box), so a page can show it."""

    name = "conversation.replica.thinking"
    waited_ms: int


@dataclass(frozen=True, kw_only=True)
class ReplicaJoined(Event):
    name = "system.replica_joined"
    kind = "system"
    replica_id: str


@dataclass(frozen=True, kw_only=True)
class ToolCallRequested(Event):
    name = "conversation.tool_call"
    tool_call_id: str
    tool_name: str = field(metadata={"wire_name": "name"})
    arguments: str


@dataclass(frozen=True, kw_only=True)
class RagObservability(Event):
    """The knowledge base's passages a user turn was answered with."""

    name = "conversation.rag.observability"
    strategy: str
    retrieval_ms: float
    chunks: list[dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class TurnMetricsReady(Event):
    """A reply's latency record (ours): stored with its turn, never sent to clients."""

    name = "conversation.turn_metrics"
    kind = "metrics"
    metrics: TurnMetrics

    def properties(self) -> dict[str, Any]:
        return self.metrics.as_dict()


@dataclass(frozen=True, kw_only=True)
class ErrorOccurred(Event):
    name = "system.error"
    kind = "system"
    reason: str
    engine: str = ""
    code: str = "engine_error"


# ---------------------------------------------------------------------------- wake phrases
@dataclass(frozen=True, kw_only=True)
class WakePhraseDetected(Event):
    """The envelope only: the phrase is not echoed back (as in the hosted product)."""

    name = "system.wake_phrase_detected"
    kind = "system"


@dataclass(frozen=True, kw_only=True)
class SleepPhraseDetected(Event):
    name = "system.sleep_phrase_detected"
    kind = "system"


# ---------------------------------------------------------------------------- objectives
@dataclass(frozen=True, kw_only=True)
class ObjectivePending(Event):
    """A manual objective whose variables are in: it waits for the client's confirmation."""

    name = "conversation.objective.pending"
    objective_name: str
    output_variables: dict[str, Any]
    objectives_id: str


@dataclass(frozen=True, kw_only=True)
class ObjectiveCompleted(Event):
    name = "conversation.objective.completed"
    objective_name: str
    output_variables: dict[str, Any]
    objectives_id: str
    next_objectives: list[str]
    progress: dict[str, Any]


# ---------------------------------------------------------------------------- guardrails
@dataclass(frozen=True, kw_only=True)
class GuardrailTriggered(Event):
    """A rule broken by the user's turn or the reply; kept from the client (``internal``)
    when the rule's ``app_message`` is false."""

    name = "conversation.guardrail.triggered"
    guardrail: str
    guardrail_uuid: str
    reason: str
    role: str
    modality: str
    check_ms: float
    app_message: bool = field(default=True, metadata={"wire": False})

    @property
    def message_type(self) -> str:
        return self.kind if self.app_message else INTERNAL


# ---------------------------------------------------------------------------- perception
@dataclass(frozen=True, kw_only=True)
class PerceptionChanged(Event):
    name = "conversation.perception_change"
    change: str
    since: float
    details: dict[str, Any] = field(default_factory=dict, metadata={"flatten": True})


@dataclass(frozen=True, kw_only=True)
class PerceptionAwareness(Event):
    name = "conversation.perception_awareness"
    answers: list[dict[str, str]]
    scene: str
    unanswerable: list[str]


@dataclass(frozen=True, kw_only=True)
class PerceptionToolCall(Event):
    """A visual tool fired; ``frames`` are base64 JPEGs (sent to clients, never stored)."""

    name = "conversation.perception_tool_call"
    tool_name: str = field(metadata={"wire_name": "name"})
    arguments: str
    frames: list[str]


@dataclass(frozen=True, kw_only=True)
class PerceptionAnalysis(Event):
    name = "conversation.perception_analysis"
    analysis: str


# the protocol names, for code that reads stored events or wire JSON
UTTERANCE = Utterance.name
UTTERANCE_STREAMING = UtteranceStreaming.name
REPLICA_STARTED = ReplicaStartedSpeaking.name
REPLICA_STOPPED = ReplicaStoppedSpeaking.name
REPLICA_THINKING = ReplicaThinking.name
REPLICA_JOINED = ReplicaJoined.name
USER_STARTED = UserStartedSpeaking.name
USER_STOPPED = UserStoppedSpeaking.name
TOOL_CALL = ToolCallRequested.name
RAG_OBSERVABILITY = RagObservability.name
TURN_METRICS = TurnMetricsReady.name
SYSTEM_ERROR = ErrorOccurred.name
OBJECTIVE_PENDING = ObjectivePending.name
OBJECTIVE_COMPLETED = ObjectiveCompleted.name
GUARDRAIL_TRIGGERED = GuardrailTriggered.name
WAKE_PHRASE_DETECTED = WakePhraseDetected.name
SLEEP_PHRASE_DETECTED = SleepPhraseDetected.name
PERCEPTION_CHANGE = PerceptionChanged.name
PERCEPTION_AWARENESS = PerceptionAwareness.name
PERCEPTION_TOOL_CALL = PerceptionToolCall.name
PERCEPTION_ANALYSIS = PerceptionAnalysis.name

EventSink = Callable[[Event], None]


class EventEmitter:
    """Stamps events (``seq``, ``timestamp``) and hands them to the sink (which must not
    block: queue it). ``log`` keeps the latest ones, for tests, benchmarks and debugging."""

    def __init__(self, conversation_id: str, sink: EventSink | None, clock: Clock, *,
                 complete: Callable[[Event], Event] | None = None) -> None:
        self.conversation_id = conversation_id
        self._sink = sink
        self._clock = clock
        #: fills in what the emitting processor does not know (a user turn's visual context)
        self._complete = complete
        self._seq = 0
        self.log: list[Event] = []
        self.max_log = 2000

    def emit(self, event: Event) -> Event:
        self._seq += 1
        event = dataclasses.replace(event, seq=self._seq, timestamp=self._clock.time())
        if self._complete is not None:
            event = self._complete(event)
        self.log.append(event)
        if len(self.log) > self.max_log:
            del self.log[: len(self.log) - self.max_log]
        if self._sink is not None:
            try:
                self._sink(event)
            except Exception:  # noqa: BLE001 - a broken consumer must not break the call
                logger.exception("[%s] event sink failed on %s", self.conversation_id, event.name)
        return event

    def user_turn(self, text: str, *, inference_id: str | None, turn_idx: int) -> None:
        """A decided user turn: its final caption, then its utterance."""
        self.emit(UtteranceStreaming(role="user", speech=text, final=True, inference_id=inference_id, turn_idx=turn_idx))
        self.emit(Utterance(role="user", speech=text, inference_id=inference_id, turn_idx=turn_idx))

    def error(self, reason: str, *, engine: str = "", code: str = "engine_error",
              inference_id: str | None = None, turn_idx: int | None = None) -> Event:
        return self.emit(ErrorOccurred(reason=reason, engine=engine, code=code,
                                       inference_id=inference_id, turn_idx=turn_idx))
