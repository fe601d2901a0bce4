"""The embedded perception engine (MediaPipe) on camera video made in the test from the stock
portrait: what one frame reads, and a scripted call (present, looking away, absent, two
people) turned into stable states and change events, in order, with plausible timing."""
from __future__ import annotations

import asyncio

import pytest

from bench import perception_scene as sv
from conversations.realtime.clock import ManualClock
from conversations.realtime.perception.engine import MediaPipePerception, get_engine
from conversations.realtime.events import PERCEPTION_CHANGE
from conversations.realtime.perception.monitor import PerceptionMonitor
from conversations.realtime.perception.options import SamplingPolicy

pytestmark = pytest.mark.slow

KEY_CHANGES = ("user_looked_away", "user_looked_back", "user_left", "user_returned",
               "second_person_appeared", "second_person_left")


@pytest.fixture(scope="module")
def engine() -> MediaPipePerception:
    return get_engine()


@pytest.fixture(scope="module")
def settled(engine: MediaPipePerception):
    """A per-session stream whose baseline was learnt on the portrait facing the camera."""
    stream = engine.stream()
    for i in range(6):
        stream.signals(engine.read(sv.jitter(sv.portrait(), 0.3 * i)), 300.0 * i)
    assert stream.baseline.ready
    return stream


def test_portrait_facing_the_camera(engine, settled) -> None:
    sig = settled.signals(engine.read(sv.portrait()), 10_000)
    assert sig.face_count == 1 and sig.present
    assert sig.attentive, (sig.yaw_deg, sig.pitch_deg)
    assert abs(sig.yaw_deg) < 8 and abs(sig.pitch_deg) < 8
    assert sig.smile > 0.6, "the astronaut smiles broadly in the portrait"
    assert not sig.eyes_closed and sig.eye_openness > 0.2
    assert 0.3 < sig.brightness < 0.8 and 0.15 < sig.face_size < 0.5
    assert isinstance(sig.smile, float) and isinstance(sig.face_size, float)
    assert 0 < sig.analysis_ms


def test_head_turned_reads_as_not_attentive(engine, settled) -> None:
    sig = settled.signals(engine.read(sv.scene_frame("looking_away")), 11_000)
    assert sig.face_count == 1 and sig.present
    assert not sig.attentive
    assert abs(sig.pitch_deg) > settled.pitch_limit, sig.pitch_deg


def test_turned_away_is_present_without_a_face(engine, settled) -> None:
    sig = settled.signals(engine.read(sv.turned_away()), 12_000)
    assert sig.face_count == 0
    assert sig.person_visible and sig.present and not sig.attentive


def test_empty_room_is_absent(engine, settled) -> None:
    sig = settled.signals(engine.read(sv.background()), 13_000)
    assert sig.face_count == 0 and not sig.person_visible and not sig.present


def test_two_people(engine, settled) -> None:
    sig = settled.signals(engine.read(sv.two_people()), 14_000)
    assert sig.face_count == 2 and sig.present


def test_large_frames_are_scaled_down(engine) -> None:
    import cv2

    big = cv2.resize(sv.portrait(), (1280, 960))
    reading = engine.read(big)
    assert reading.width == 640 and len(reading.faces) == 1


def test_analyse_runs_off_the_event_loop(engine) -> None:
    async def main():
        sig = await asyncio.wait_for(engine.analyse(sv.portrait(), t_ms=5.0), 20)
        return sig

    sig = asyncio.run(main())
    assert sig.face_count == 1 and sig.t_ms == 5.0


async def _run_script(monitor: PerceptionMonitor, clock: ManualClock, fps: float,
                      contexts_at: tuple[float, ...] = ()) -> dict[float, str]:
    """Offer the scripted call's frames at ``fps`` (frame time = clock time)."""
    contexts: dict[float, str] = {}
    n = int(sv.SCRIPT_END_S * fps)
    for i in range(n):
        t = i / fps
        clock.advance(max(0.0, t - clock.monotonic()))
        monitor.offer_frame(sv.frame_at(t), 1000.0 * t)
        await monitor.drain(timeout=30)
        for at in contexts_at:
            if abs(t - at) < 1e-6:
                contexts[at] = monitor.visual_context()
    return contexts


def test_scripted_call_states_and_changes(engine) -> None:
    clock = ManualClock(start=0.0)
    events: list[tuple[float, str, dict]] = []
    monitor = PerceptionMonitor(
        {"perception_model": "mediapipe", "perception_analysis_queries": ["Did the user leave the frame?",
                                                                           "Was the user wearing glasses?"]},
        emit=lambda e: events.append((clock.monotonic(), e.name, e.properties())), clock=clock, engine=engine,
        sampling=SamplingPolicy(idle_fps=2.0))

    async def main() -> dict[float, str]:
        try:
            return await _run_script(monitor, clock, fps=2.0, contexts_at=(4.0, 8.0, 12.0, 17.0, 21.0, 25.0))
        finally:
            analysis = await monitor.final_analysis()
            await monitor.close()
            contexts_final["analysis"] = analysis

    contexts_final: dict[str, str] = {}
    contexts = asyncio.run(asyncio.wait_for(main(), 120))

    changes = [(t, p) for t, kind, p in events if kind == PERCEPTION_CHANGE and p["change"] in KEY_CHANGES]
    kinds = [p["change"] for _, p in changes]
    assert kinds == list(KEY_CHANGES), kinds
    # each change is dated to the scene switch that caused it, and noticed soon after
    starts = {"user_looked_away": 6.0, "user_looked_back": 10.0, "user_left": 13.0, "user_returned": 19.0,
              "second_person_appeared": 23.0, "second_person_left": 28.0}
    epoch0 = clock.time() - clock.monotonic()
    for detected_at, props in changes:
        began = props["since"] - epoch0
        expected = starts[props["change"]]
        assert expected - 0.01 <= began <= expected + 0.51, (props, began)
        assert 0 <= detected_at - began <= 2.6, (props["change"], detected_at - began)
    returned = next(p for _, p in changes if p["change"] == "user_returned")
    assert returned["away_s"] == pytest.approx(6.0, abs=0.6)

    assert contexts[4.0].startswith("[visual] user present, looking at the screen, smiling")
    assert "looking away" in contexts[8.0] and "changed: looked away 2s ago" in contexts[8.0]
    assert "looking at the screen" in contexts[12.0] and "looked back 2s ago" in contexts[12.0]
    assert contexts[17.0].startswith("[visual] no one in view (user left 4s ago)")
    assert "changed: left 4s ago" in contexts[17.0]
    assert "returned 2s ago" in contexts[21.0] and "looked back" not in contexts[21.0]
    assert "2 people in view" in contexts[25.0] and "a second person appeared 2s ago" in contexts[25.0]

    analysis = contexts_final["analysis"]
    assert analysis.startswith("Observed 3")
    assert "left the frame 1 time(s)" in analysis
    assert "up to 2 people were in view" in analysis
    assert "Q: Did the user leave the frame?\nA: In view 8" in analysis  # ~84% of the call
    assert "Q: Was the user wearing glasses?\nA: Not answerable by the embedded perception engine" in analysis


def test_sampling_drops_frames_while_busy_and_adapts_to_speech(engine) -> None:
    clock = ManualClock(start=0.0)
    monitor = PerceptionMonitor({}, emit=lambda *a: None, clock=clock, engine=engine,
                                sampling=SamplingPolicy(speaking_fps=4.0, listening_fps=2.0, idle_fps=1.0))

    async def main() -> None:
        frame = sv.portrait()
        # idle: 15 fps offered for 2 s -> about 1 analysed per second
        for i in range(30):
            monitor.offer_frame(frame, 1000.0 * i / 15)
            await monitor.drain()
        idle = monitor.frames_analysed
        monitor.set_user_speaking(True)
        for i in range(30, 60):
            monitor.offer_frame(frame, 1000.0 * i / 15)
            await monitor.drain()
        speaking = monitor.frames_analysed - idle
        # a burst without waiting: everything offered while the first is analysed is dropped
        before = monitor.frames_dropped_busy
        for i in range(5):
            monitor.offer_frame(frame, 10_000.0 + 1000.0 * i)
        dropped = monitor.frames_dropped_busy - before
        await monitor.drain()
        await monitor.close()
        assert idle == 2, idle
        assert speaking == 8, speaking
        assert dropped == 4

    asyncio.run(asyncio.wait_for(main(), 60))
