"""Perception logic in isolation (no models): state latches, the visual-context format,
which queries and tools the embedded engine understands, the vision-model answer format,
and a visual tool firing once per onset."""
from __future__ import annotations

import json

import pytest

from conversations.realtime.engines.base import PerceptionSignals
from conversations.realtime.perception.awareness import (
    Condition,
    EmbeddedAwareness,
    build_vision_prompt,
    classify_query,
    embedded_coverage,
    parse_vision_answer,
)
from conversations.realtime.perception.context import format_visual_context
from conversations.realtime.perception.monitor import create_monitor
from conversations.realtime.perception.options import PerceptionConfig
from conversations.realtime.perception.state import PerceptionChange, StateTracker, VisualState
from conversations.realtime.perception.tools import OnsetGate, ToolWatcher, parse_tools


def face(t_ms: float, **kw) -> PerceptionSignals:
    values = dict(face_count=1, present=True, attentive=True, smile=0.1, brightness=0.5, face_brightness=0.5,
                  eye_openness=0.3)
    values.update(kw)
    return PerceptionSignals(t_ms=t_ms, **values)


def nobody(t_ms: float) -> PerceptionSignals:
    return PerceptionSignals(t_ms=t_ms, brightness=0.5)


def feed(tracker: StateTracker, frames: list[PerceptionSignals]) -> list[PerceptionChange]:
    out = []
    for f in frames:
        out += tracker.update(f)
    return out


# ---------------------------------------------------------------------------- state
def test_first_sight_is_not_a_return_and_empty_start_is_not_leaving() -> None:
    tr = StateTracker()
    assert feed(tr, [nobody(t) for t in range(0, 3000, 500)]) == []
    assert tr.state.present is False
    changes = feed(tr, [face(t) for t in range(3000, 5000, 500)])
    assert [c.kind for c in changes] == ["user_returned"]  # seen absent first, so this is a return
    tr2 = StateTracker()
    assert [c.kind for c in feed(tr2, [face(t) for t in range(0, 2000, 500)])] == []
    assert tr2.state.present is True and tr2.state.attention == "looking"


def test_a_missed_frame_or_a_short_gap_is_not_leaving() -> None:
    tr = StateTracker()
    frames = [face(t) for t in range(0, 3000, 250)] + [nobody(3000)] + [face(t) for t in range(3250, 5000, 250)]
    frames += [nobody(t) for t in range(5000, 6250, 250)] + [face(t) for t in range(6250, 8000, 250)]
    assert feed(tr, frames) == []
    assert tr.state.present


def test_leaving_and_returning_are_dated_to_when_they_happened() -> None:
    tr = StateTracker()
    feed(tr, [face(t) for t in range(0, 2000, 500)])
    left = feed(tr, [nobody(t) for t in range(2000, 6000, 500)])
    assert [(c.kind, c.t_ms, c.detected_ms) for c in left] == [("user_left", 2000, 3500)]
    assert tr.state.absent_since_ms == 2000
    back = feed(tr, [face(t) for t in range(6000, 7000, 500)])
    assert [(c.kind, c.t_ms, c.details) for c in back] == [("user_returned", 6000, {"away_s": 4.0})]


def test_attention_needs_time_to_go_away_and_comes_back_at_once() -> None:
    tr = StateTracker()
    feed(tr, [face(t) for t in range(0, 1000, 250)])
    glance = feed(tr, [face(1000, attentive=False, pitch_deg=30)] + [face(t) for t in range(1250, 2000, 250)])
    assert glance == [], "a glance shorter than 0.8 s is not looking away"
    away = feed(tr, [face(t, attentive=False, pitch_deg=30) for t in range(2000, 3500, 250)])
    assert [c.kind for c in away] == ["user_looked_away"] and away[0].t_ms == 2000
    back = feed(tr, [face(3500)])
    assert [c.kind for c in back] == ["user_looked_back"] and back[0].details == {"away_s": 1.5}
    turned = feed(tr, [PerceptionSignals(t_ms=t, present=True, person_visible=True, brightness=0.5)
                       for t in range(4000, 5500, 250)])
    assert [(c.kind, c.details) for c in turned] == [("user_looked_away", {"how": "turned_away"})]
    assert tr.state.attention == "turned_away" and tr.state.present


def test_blinks_are_not_closed_eyes_but_a_long_closure_is() -> None:
    tr = StateTracker()
    frames = []
    for i, t in enumerate(range(0, 30_000, 250)):
        frames.append(face(t, eyes_closed=(i % 10 == 0)))  # one frame in ten catches a blink
    assert [c.kind for c in feed(tr, frames)] == []
    # 10% of frames closed -> 0.1 * 60 / 0.15 = 40 blinks a minute
    assert tr.state.blink_rate_per_min == pytest.approx(40, abs=1)
    closed = feed(tr, [face(t, eyes_closed=True) for t in range(30_000, 32_000, 250)])
    assert [c.kind for c in closed] == ["user_closed_eyes"]
    assert tr.state.eyes_closed and tr.state.blink_rate_per_min is None


def test_second_person_lighting_and_smiles() -> None:
    tr = StateTracker()
    changes = feed(tr, [face(t) for t in range(0, 1000, 250)])
    changes += feed(tr, [face(t, face_count=2) for t in range(1000, 3000, 250)])
    changes += feed(tr, [face(t, smile=0.9) for t in range(3000, 4000, 250)])
    changes += feed(tr, [face(t, smile=0.45) for t in range(4000, 5000, 250)])  # hysteresis: still smiling
    changes += feed(tr, [face(t, smile=0.45, face_brightness=0.1) for t in range(5000, 7500, 250)])
    kinds = [c.kind for c in changes]
    assert kinds == ["second_person_appeared", "user_started_smiling", "second_person_left", "lighting_changed"]
    assert changes[-1].details == {"lighting": "dark"}
    assert tr.state.smiling and tr.state.lighting == "dark"


def test_out_of_order_frames_are_ignored() -> None:
    tr = StateTracker()
    feed(tr, [face(t) for t in range(0, 2000, 500)])
    assert tr.update(nobody(100)) == [] and tr.state.frames == 4


def test_time_in_state_statistics() -> None:
    tr = StateTracker()
    feed(tr, [face(t) for t in range(0, 10_000, 500)] + [nobody(t) for t in range(10_000, 20_000, 500)])
    s = tr.stats
    assert s.observed_ms == pytest.approx(19_500)
    # each frame counts the time since the previous one in the state it shows; absence is
    # believed 1.5 s after the first empty frame (10 s), so the frames up to 11 s count as present
    assert s.present_ms == pytest.approx(11_000)
    assert s.counts == {"user_left": 1}


# ---------------------------------------------------------------------------- visual context
def test_visual_context_format() -> None:
    state = VisualState(t_ms=10_000, frames=40, present=True, attention="looking", people=1, smiling=True,
                        lighting="ok")
    changes = [PerceptionChange("user_returned", 6_000, 6_500, {"away_s": 12.0})]
    assert format_visual_context(state, changes, 10_200) == (
        "[visual] user present, looking at the screen, smiling; changed: returned 4s ago")
    absent = VisualState(t_ms=10_000, frames=40, present=False, absent_since_ms=1_000, last_seen_ms=900,
                         lighting="ok")
    assert format_visual_context(absent, [], 10_000, answers=[("Is anyone there?", "no one in view")]) == (
        '[visual] no one in view (user left 9s ago); "Is anyone there?" no one in view')
    busy = VisualState(t_ms=10_000, frames=3, present=True, attention="looking_away", people=2, lighting="dark",
                       motion="restless")
    assert format_visual_context(busy, [], 10_000) == (
        "[visual] user present, looking away, 2 people in view, dark lighting, moving a lot")
    assert format_visual_context(VisualState(), [], 0) == ""
    stale = format_visual_context(state, [], 30_000)
    assert stale.startswith("[visual] camera image lost 20s ago; last seen: user present")
    assert format_visual_context(VisualState(), [], 0, scene="a man at a desk.") == "[visual] seen: a man at a desk"


# ---------------------------------------------------------------------------- awareness
@pytest.mark.parametrize("query, signal", [
    ("Is the user smiling?", "smiling"),
    ("Is the user looking at the screen?", "attention"),
    ("Does the user seem distracted?", "attention"),
    ("Is anyone else in the room?", "people"),
    ("How many people are in view?", "people"),
    ("Is the user still there?", "presence"),
    ("Did the user leave?", "presence"),
    ("Does the user look tired or sleepy?", "eyes"),
    ("Is the lighting good?", "lighting"),
    ("Is the user fidgeting?", "motion"),
    ("Did the user raise their eyebrows?", "eyebrows"),
    ("Is the user wearing glasses?", None),
    ("Is the user holding something up to the light?", None),
    ("What is in the background?", None),
    ("Does the user seem confused?", None),
])
def test_embedded_engine_knows_which_queries_it_can_answer(query: str, signal: str | None) -> None:
    assert classify_query(query) == signal


def test_coverage_for_the_pal_maker_and_answers() -> None:
    queries = ["Is the user smiling?", "Is the user wearing a hat?", "Is there a second person in view?"]
    cov = embedded_coverage(queries)
    assert cov["unanswerable"] == ["Is the user wearing a hat?"]
    assert [a["signal"] for a in cov["answerable"]] == ["smiling", "people"]
    assert "vision-llm" in cov["note"]
    state = VisualState(t_ms=1, frames=5, present=True, attention="looking", people=2, smiling=False)
    assert EmbeddedAwareness(queries).answers(state) == [
        ("Is the user smiling?", "not smiling"), ("Is there a second person in view?", "2 people in view")]


def test_vision_prompt_and_tolerant_answer_parsing() -> None:
    prompt = build_vision_prompt(["Is the user holding a pen?"], [Condition("show_id", "The user shows an ID card")],
                                 tool_prompt="Only call show_id for official documents.", n_images=2, screen=True)
    assert "Q1: Is the user holding a pen?" in prompt
    assert "C1: show_id: The user shows an ID card" in prompt
    assert "Guidance: Only call show_id for official documents." in prompt
    assert "the last image is the user's shared screen" in prompt
    text = ("**S:** A woman in an orange suit.\n- **Q1:** Yes, a blue pen\nnoise line\n"
            'C1: yes {"document": "passport"}\nC2: no\nQ7: out of range\n')
    ans = parse_vision_answer(text, 1, 2)
    assert ans.scene == "A woman in an orange suit."
    assert ans.answers == ["Yes, a blue pen"]
    assert ans.conditions == [{"document": "passport"}, False]
    assert parse_vision_answer("C1: YES", 0, 1).conditions == [{}]


# ---------------------------------------------------------------------------- tools
TOOLS = [
    {"type": "function", "function": {"name": "user_left_desk", "description": "The user leaves the frame.",
                                      "parameters": {"type": "object", "properties": {"reason": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "notify_second_person",
                                      "description": "Someone else appears on camera.",
                                      "parameters": {"type": "object", "properties": {
                                          "people_count": {"type": "integer"}}}}},
    {"type": "function", "function": {"name": "id_card_shown", "description": "",
                                      "parameters": {"type": "object", "properties": {}}}},
]


def test_tools_map_to_embedded_conditions() -> None:
    tools = parse_tools(TOOLS, "Call id_card_shown when the user holds an ID card up to the camera.")
    assert [(t.name, t.embedded) for t in tools] == [
        ("user_left_desk", "user_absent"), ("notify_second_person", "multiple_people"), ("id_card_shown", None)]
    assert tools[2].condition_text == "Call id_card_shown when the user holds an ID card up to the camera."
    watcher = ToolWatcher(TOOLS, "Call id_card_shown when the user holds an ID card up to the camera.")
    assert watcher.unsupported == ["id_card_shown"]


def test_a_tool_fires_once_per_onset() -> None:
    tr = StateTracker()
    watcher = ToolWatcher(TOOLS)
    fired: list[tuple[float, str, dict]] = []

    def run(frames: list[PerceptionSignals]) -> None:
        for f in frames:
            changes = tr.update(f)
            for tool, args in watcher.embedded_update(tr.state, changes, f.t_ms):
                fired.append((f.t_ms, tool.name, json.loads(args)))

    run([face(t) for t in range(0, 2000, 250)])
    run([nobody(t) for t in range(2000, 12_000, 250)])  # away for 10 s: one call, not 40
    run([face(t) for t in range(12_000, 14_000, 250)])
    run([nobody(t) for t in range(14_000, 17_000, 250)])  # leaves again within the cooldown: no call
    run([face(t) for t in range(17_000, 30_000, 250)])
    run([nobody(t) for t in range(30_000, 33_000, 250)])  # again, after the cooldown: a call
    run([face(t, face_count=2) for t in range(33_000, 36_000, 250)])
    assert [(t, name) for t, name, _ in fired] == [
        (3500, "user_left_desk"), (31_500, "user_left_desk"), (34_000, "notify_second_person")]
    assert fired[0][2] == {"reason": "no one is in view"}
    assert fired[2][2] == {"people_count": 2}


def test_onset_gate_rearms_only_after_the_condition_was_false_long_enough() -> None:
    gate = OnsetGate(rearm_ms=3000, cooldown_ms=0)
    assert gate.update("x", True, 0) is True
    assert gate.update("x", True, 500) is False
    assert gate.update("x", False, 1000) is False
    assert gate.update("x", True, 2000) is False  # flicker: false for only 1 s
    assert gate.update("x", False, 2500) is False
    assert gate.update("x", False, 5600) is False
    assert gate.update("x", True, 6000) is True


def test_config_accepts_legacy_names_and_off_creates_no_monitor() -> None:
    cfg = PerceptionConfig.from_layer({"perception_model": "raven-0", "ambient_awareness_queries": ["Smiling?"],
                                       "perception_tools": TOOLS[:1], "perception_tool_prompt": "p"})
    assert cfg.model == "mediapipe" and cfg.awareness_queries == ("Smiling?",)
    assert cfg.tools == tuple(TOOLS[:1]) and cfg.tool_prompt == "p"
    assert create_monitor({"perception_model": "off"}, emit=lambda *a: None) is None
    with pytest.raises(ValueError):
        PerceptionConfig.from_layer({"perception_model": "nope"})
