"""The realtime core's typed events and the one place they become the protocol's JSON."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import conversations.realtime as realtime
from conversations.realtime import events as ev
from conversations.realtime.clock import ManualClock
from conversations.realtime.events import (
    INTERNAL,
    Event,
    EventEmitter,
    GuardrailTriggered,
    PerceptionChanged,
    ToolCallRequested,
    TurnMetricsReady,
    Utterance,
)
from conversations.realtime.metrics import TurnMetrics
from conversations.realtime.protocol import to_wire


def _event_classes() -> list[type[Event]]:
    seen, todo = [], list(Event.__subclasses__())
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo += cls.__subclasses__()
    return seen


def test_each_event_class_declares_its_own_protocol_name_and_kind() -> None:
    classes = _event_classes()
    names = [cls.name for cls in classes]
    assert len(classes) >= 20 and len(names) == len(set(names)), names
    for cls in classes:
        assert cls.name.split(".")[0] in ("conversation", "system"), cls
        assert cls.kind == ("system" if cls.name.startswith("system.") else "metrics" if cls is TurnMetricsReady
                            else "conversation"), cls


def test_the_emitter_numbers_and_stamps_events_and_the_wire_form_has_the_documented_envelope() -> None:
    clock = ManualClock()
    got: list[Event] = []
    emitter = EventEmitter("c1", got.append, clock)
    clock.advance(2.5)
    first = emitter.emit(Utterance(role="user", speech="Hello.", inference_id="i1", turn_idx=1))
    second = emitter.emit(ToolCallRequested(tool_call_id="t1", tool_name="get_weather", arguments="{}",
                                            inference_id="i2", turn_idx=1))
    assert got == [first, second] and emitter.log == got
    assert (first.seq, second.seq) == (1, 2) and first.timestamp == clock.time()
    assert to_wire(first, "c1") == {
        "message_type": "conversation", "event_type": "conversation.utterance", "conversation_id": "c1",
        "inference_id": "i1", "seq": 1, "turn_idx": 1, "timestamp": first.timestamp,
        "properties": {"role": "user", "speech": "Hello."},  # no visual_context when there is none
    }
    assert to_wire(second, "c1")["properties"] == {"tool_call_id": "t1", "name": "get_weather", "arguments": "{}"}


def test_payload_rules_omit_flatten_rename_and_keep_internal_events_from_clients() -> None:
    seen = Utterance(role="user", speech="Hi", visual_context="[visual] a person, smiling")
    assert seen.properties()["visual_context"] == "[visual] a person, smiling"
    change = PerceptionChanged(change="user_left", since=12.5, details={"faces": 0})
    assert change.properties() == {"change": "user_left", "since": 12.5, "faces": 0}
    rule = dict(guardrail="no_weather", guardrail_uuid="u1", reason="weather", role="replica", modality="verbal",
                check_ms=20.0)
    assert GuardrailTriggered(**rule).message_type == "conversation"
    hidden = GuardrailTriggered(**rule, app_message=False)
    assert hidden.message_type == INTERNAL and "app_message" not in hidden.properties()
    metrics = TurnMetrics(reply_id=3, inference_id="i3", turn_idx=2, speech_end=1.0, first_audio_played=1.8)
    wire = to_wire(TurnMetricsReady(metrics=metrics), "c1")
    assert wire["message_type"] == "metrics" and wire["properties"]["u2u_ms"] == 800.0


def test_the_events_are_frozen() -> None:
    event = Utterance(role="user", speech="Hi")
    try:
        event.speech = "changed"  # type: ignore[misc]
    except dataclasses.FrozenInstanceError:
        return
    raise AssertionError("an event could be changed after it was emitted")


def test_only_the_protocol_module_writes_the_protocol_envelope() -> None:
    """The core emits typed events; a dict with an ``event_type`` key is made in protocol.py only."""
    root = Path(realtime.__file__).parent
    writers = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "protocol.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict) and any(
                    isinstance(k, ast.Constant) and k.value in ("event_type", "message_type") for k in node.keys):
                writers.append(f"{path.relative_to(root)}:{node.lineno}")
    assert writers == []


def test_protocol_names_are_derived_from_the_classes() -> None:
    assert ev.UTTERANCE == Utterance.name and ev.GUARDRAIL_TRIGGERED == GuardrailTriggered.name
    assert ev.TURN_METRICS == TurnMetricsReady.name and ev.PERCEPTION_CHANGE == PerceptionChanged.name
