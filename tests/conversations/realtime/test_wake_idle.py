"""Wake/sleep phrases and idle engagement with fake engines and a manual clock: the logic in
isolation. (Through the real engines: test_wake_idle_real.py.)

Fake speech is tone bursts, one per word; the fake STT turns the number of bursts into a
sentence (``SCRIPT``), so each test says which sentence it speaks by how many words it plays.
"""
from __future__ import annotations

import pytest
import numpy as np
from tests.conversations.realtime.realtime_fakes import (
    GAP_MS,
    SR,
    WORD_MS,
    FakeLLM,
    FakeSTT,
    FakeTTS,
    make_pipeline,
    run,
    silence,
    tone,
)

from conversations.realtime import events as ev
from conversations.realtime.config import PipelineConfig
from conversations.realtime.levels import IDLE_ENGAGEMENT
from conversations.realtime.idle import NUDGE_NOTE
from conversations.realtime.events import SLEEP_PHRASE_DETECTED, WAKE_PHRASE_DETECTED
from conversations.realtime.wake import (
    WakeGate,
    contains_phrase,
    phrase_words,
)

#: each kind of utterance is spoken as tone bursts of its own pitch (one burst a word)
PLAIN, WAKE, SLEEP, LONG_PLAIN = 220.0, 440.0, 330.0, 550.0
SCRIPT = {
    PLAIN: "What time is it?",
    WAKE: "Hey, Ana! What time is it?",
    SLEEP: "Okay, go to sleep now.",
    LONG_PLAIN: "Stop talking now and listen to me please.",
}
LONG_REPLY = ("Once upon a time there was a small town by the sea. Every morning the fishermen "
              "went out in their boats. In the evening they came back with their catch.")


class ToneSTT(FakeSTT):
    """The fake STT's words (one per burst, the whole sentence once all are there) of the
    sentence whose pitch the audio has."""

    def __init__(self) -> None:
        super().__init__("")

    async def transcribe(self, audio: np.ndarray, **kwargs):  # noqa: ANN003, ANN201
        spectrum = np.abs(np.fft.rfft(audio))
        pitch = float(np.argmax(spectrum)) * SR / max(len(audio), 1)
        self.script = SCRIPT[min(SCRIPT, key=lambda hz: abs(hz - pitch))]
        return await super().transcribe(audio, **kwargs)


def spoken(kind: float) -> np.ndarray:
    words = len(SCRIPT[kind].split())
    parts = []
    for i in range(words):
        parts.append(tone(WORD_MS, freq=kind))
        if i < words - 1:
            parts.append(silence(GAP_MS))
    return np.concatenate(parts)


def user_speech(drv) -> list[str]:  # noqa: ANN001
    return [e["properties"]["speech"] for _, e in drv.rec.of_type(ev.UTTERANCE) if e["properties"]["role"] == "user"]


def replica_speech(drv) -> list[str]:  # noqa: ANN001
    return [e["properties"]["speech"] for _, e in drv.rec.of_type(ev.UTTERANCE)
            if e["properties"]["role"] == "replica"]


async def say(drv, kind: float, *, settle_ms: float = 2500) -> None:  # noqa: ANN001
    await drv.play(spoken(kind))
    await drv.silence(settle_ms)


# ---------------------------------------------------------------------------- matching
@pytest.mark.parametrize(("text", "phrase", "found"), [
    ("Hey, Ana! What time is it?", "hey ana", True),
    ("hey ana", "Hey, Ana", True),
    ("Hey Anna, what time is it?", "hey ana", True),  # a letter too many (6 letters: one edit)
    ("Heyana, tell me.", "hey ana", True),  # the words run together
    ("Hey-Ana, tell me.", "hey ana", True),
    ("HÉY ÀNA!", "hey ana", True),  # accents and case
    ("Jarvus, what is the time?", "Jarvis", True),  # Whisper's slip of one letter
    ("Jar vis, what is the time?", "Jarvis", True),  # a word split in two
    ("Hey, what time is it?", "hey ana", False),
    ("Hey Anastasia, hello.", "hey ana", False),
    ("Anna, hello.", "Ana", False),  # under 5 letters: exact words only
    ("Ana, hello.", "Ana", True),
    ("OK computer, lights on.", "okay computer", True),  # 12 letters: two edits
    ("Okay, conputor! Lights on.", "okay computer", True),
    ("Computer, lights on.", "okay computer", False),  # a word missing is not the phrase
    ("Hey Ana", "hey ana", True),
    ("", "hey ana", False),
])
def test_the_phrase_is_found_in_what_whisper_writes(text: str, phrase: str, found: bool) -> None:
    assert contains_phrase(text, phrase) is found


def test_phrase_words_drop_case_accents_and_punctuation() -> None:
    assert phrase_words("What's up, Zoë?") == ["whats", "up", "zoe"]
    assert WakeGate.for_flow("  ") is None
    with pytest.raises(ValueError):
        WakeGate("!!")


def test_the_gate_wakes_for_one_turn_without_a_sleep_phrase_and_stays_awake_with_one() -> None:
    one = WakeGate("hey ana")
    assert not one.admit("What time is it?", turn_idx=1)
    assert one.admit("Hey Ana, what time is it?", turn_idx=2)
    assert one.asleep and not one.admit("And tomorrow?", turn_idx=3)
    both = WakeGate("hey ana", "go to sleep")
    assert both.admit("Hey Ana, hello.", turn_idx=1) and both.awake
    assert both.admit("And tomorrow?", turn_idx=2)
    assert not both.admit("Okay, go to sleep now.", turn_idx=3) and both.asleep
    assert not both.admit("And tomorrow?", turn_idx=4)
    assert both.unanswered == 2


# ---------------------------------------------------------------------------- wake phrase in a call
def test_only_turns_with_the_wake_phrase_are_answered_and_the_others_are_in_the_transcript() -> None:
    async def main() -> None:
        llm = FakeLLM("It is three o'clock.")
        pipe, drv, _ = make_pipeline(stt=ToneSTT(), llm=llm,
                                     layers={"conversational_flow": {"wake_phrase": "Hey Ana"}})
        await pipe.start()
        await say(drv, PLAIN)
        # transcribed and reported as the user's turn, and nothing else: no LLM call (not even a
        # speculative one), no replica event, no metrics, nothing in the LLM's history
        assert user_speech(drv) == [SCRIPT[PLAIN]]
        assert llm.requests == []
        assert not drv.rec.of_type(ev.REPLICA_STARTED) and not drv.rec.of_type(ev.TURN_METRICS)
        assert not drv.rec.of_type(WAKE_PHRASE_DETECTED) and pipe.history == []
        assert not [1 for _, e in drv.rec.events if (e["properties"] or {}).get("role") == "replica"]

        await say(drv, WAKE)
        started = await drv.wait_event(ev.REPLICA_STARTED, timeout_ms=3000)
        assert started is not None
        woke = drv.rec.first(WAKE_PHRASE_DETECTED)
        assert woke is not None and woke[1]["message_type"] == "system" and woke[1]["properties"] == {}
        assert woke[1]["turn_idx"] == 2 and woke[1]["inference_id"] == started[1]["inference_id"]
        await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=5000)
        # the LLM saw the answered turn alone
        assert [m for m in llm.requests[-1] if m["role"] == "user"] == [
            {"role": "user", "content": SCRIPT[WAKE]}]

        # no sleep phrase: awake for that one turn only
        await say(drv, PLAIN)
        assert user_speech(drv) == [SCRIPT[PLAIN], SCRIPT[WAKE], SCRIPT[PLAIN]]
        assert replica_speech(drv) == ["It is three o'clock."] and len(llm.requests) == 1
        assert [e["turn_idx"] for _, e in drv.rec.of_type(ev.UTTERANCE)] == [1, 2, 2, 3]
        await pipe.close()

    run(main())


def test_a_sleep_phrase_keeps_the_agent_awake_until_it_is_heard() -> None:
    async def main() -> None:
        llm = FakeLLM("Sure.")
        pipe, drv, _ = make_pipeline(stt=ToneSTT(), llm=llm, layers={
            "conversational_flow": {"wake_phrase": "hey ana", "sleep_phrase": "go to sleep"}})
        await pipe.start()
        for n in (PLAIN, WAKE, PLAIN, SLEEP, PLAIN):
            await say(drv, n)
            await drv.run_until(lambda: not pipe.output.replica_active, timeout_ms=5000)
        assert user_speech(drv) == [SCRIPT[n] for n in (PLAIN, WAKE, PLAIN, SLEEP, PLAIN)]
        assert replica_speech(drv) == ["Sure.", "Sure."]  # the wake turn and the one after it
        kinds = [e["event_type"] for _, e in drv.rec.events
                 if e["event_type"] in (WAKE_PHRASE_DETECTED, SLEEP_PHRASE_DETECTED)]
        assert kinds == [WAKE_PHRASE_DETECTED, SLEEP_PHRASE_DETECTED]
        assert drv.rec.first(SLEEP_PHRASE_DETECTED)[1]["turn_idx"] == 4
        assert pipe.wake.asleep and pipe.wake.unanswered == 3
        await pipe.close()

    run(main())


def test_speech_without_the_wake_phrase_never_interrupts_the_agent() -> None:
    async def main() -> None:
        llm = FakeLLM(LONG_REPLY)
        pipe, drv, _ = make_pipeline(stt=ToneSTT(), llm=llm, layers={"conversational_flow": {
            "wake_phrase": "hey ana", "replica_interruptibility": "high"}})
        await pipe.start()
        await drv.play(spoken(WAKE))
        started = await drv.wait_event(ev.REPLICA_STARTED, timeout_ms=3000)
        assert started is not None
        await drv.silence(600)
        onset = drv.t_ms
        await drv.play(spoken(LONG_PLAIN))  # "Stop talking now ..." without the phrase
        await drv.silence(1200)
        assert drv.rec.first(ev.REPLICA_STOPPED, after_ms=started[0]) is None  # still talking
        assert pipe.stats["interruptions"] == 0 and pipe.output.replica_active
        assert pipe.stats["backchannels"] == 1  # speech over the agent that did not take the turn
        # with the phrase, the same rule as any barge-in: it stops, and that turn is answered
        await drv.play(spoken(WAKE))
        stopped = drv.rec.first(ev.REPLICA_STOPPED, after_ms=onset)
        assert stopped is not None and stopped[1]["properties"]["interrupted"] is True
        await drv.wait_event(ev.REPLICA_STARTED, timeout_ms=4000, after_ms=stopped[0])
        assert pipe.stats["interruptions"] == 1 and len(llm.requests) == 2
        await pipe.close()

    run(main())


# ---------------------------------------------------------------------------- idle engagement
def nudges(llm: FakeLLM) -> list[str]:
    """The note each nudge's LLM request ended on."""
    return [r[-1]["content"] for r in llm.requests if r[-1]["content"].startswith(NUDGE_NOTE.split("{")[0])]


def test_the_agent_speaks_up_after_the_levels_silence_at_most_n_times_in_a_row() -> None:
    policy = IDLE_ENGAGEMENT["eager"]

    async def main() -> None:
        llm = FakeLLM("Are you still there?")
        pipe, drv, _ = make_pipeline(stt=ToneSTT(), llm=llm,
                                     layers={"conversational_flow": {"idle_engagement": "eager"}})
        await pipe.start()
        first = await drv.wait_event(ev.REPLICA_STARTED, timeout_ms=policy.after_s * 1000 + 2000)
        assert first is not None
        assert policy.after_s * 1000 <= first[0] <= policy.after_s * 1000 + 300
        # the LLM wrote it, from the conversation plus a note of the silence (a user-role message)
        assert nudges(llm) == [NUDGE_NOTE.format(seconds=round(policy.after_s))]
        assert llm.requests[0][0]["role"] == "system" and llm.requests[0][-1]["role"] == "user"
        stop = await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=5000)
        # the next one only after the same silence again, counted from the end of the first
        second = await drv.wait_event(ev.REPLICA_STARTED, timeout_ms=policy.after_s * 1000 + 2000,
                                      after_ms=first[0])
        assert second is not None and second[0] - stop[0] >= policy.after_s * 1000
        assert len(nudges(llm)) == policy.max_nudges == 2
        await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=5000, after_ms=second[0])
        # then it waits for the person: no more, however long the silence
        await drv.silence(3 * policy.after_s * 1000)
        assert len(drv.rec.of_type(ev.REPLICA_STARTED)) == 2 and pipe.idle.in_a_row == 2
        metrics = [e["properties"]["source"] for _, e in drv.rec.of_type(ev.TURN_METRICS)]
        assert metrics == ["idle", "idle"]
        # a turn of theirs starts a new run
        await say(drv, PLAIN, settle_ms=0)
        answer = await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=5000, after_ms=drv.t_ms - 1)
        assert answer is not None
        third = await drv.wait_event(ev.REPLICA_STARTED, timeout_ms=policy.after_s * 1000 + 2000,
                                     after_ms=answer[0])
        assert third is not None and third[0] - answer[0] >= policy.after_s * 1000
        await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=5000, after_ms=third[0])
        # the history reads like turns: each note (or the person's words), then what the agent said
        assert [m["role"] for m in pipe.history] == ["user", "assistant"] * 4
        assert pipe.history[4] == {"role": "user", "content": SCRIPT[PLAIN]}
        await pipe.close()

    run(main())


def test_no_nudge_while_a_reply_plays_or_the_person_speaks() -> None:
    policy = IDLE_ENGAGEMENT["eager"]

    async def main() -> None:
        llm = FakeLLM(lambda msgs: "Still with me?" if msgs[-1]["content"].startswith("(I have") else LONG_REPLY)
        pipe, drv, _ = make_pipeline(stt=ToneSTT(), llm=llm, tts=FakeTTS(ms_per_char=60),
                                     layers={"conversational_flow": {"idle_engagement": "eager"}})
        await pipe.start()
        await drv.silence(policy.after_s * 1000 - 1000)
        await drv.play(spoken(LONG_PLAIN))  # the person speaks just before the silence is long enough
        reply = await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=20_000)
        assert reply is not None and replica_speech(drv) == [LONG_REPLY]  # ~9 s of reply, no nudge in it
        nudge = await drv.wait_event(ev.REPLICA_STARTED, timeout_ms=policy.after_s * 1000 + 2000,
                                     after_ms=reply[0])
        assert nudge is not None and nudge[0] - reply[0] >= policy.after_s * 1000
        # the person was quiet since the end of their turn: the note says so
        said = int(nudges(llm)[0].split("for ")[1].split(" ")[0])
        assert said >= policy.after_s + 8
        await pipe.close()

    run(main())


def test_an_asleep_agent_does_not_speak_up() -> None:
    policy = IDLE_ENGAGEMENT["eager"]

    async def main() -> None:
        llm = FakeLLM("Okay.")
        pipe, drv, _ = make_pipeline(stt=ToneSTT(), llm=llm, layers={"conversational_flow": {
            "idle_engagement": "eager", "wake_phrase": "hey ana", "sleep_phrase": "go to sleep"}})
        await pipe.start()
        await drv.silence(3 * policy.after_s * 1000)
        assert llm.requests == []
        await say(drv, WAKE, settle_ms=0)
        answer = await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=5000)
        nudge = await drv.wait_event(ev.REPLICA_STARTED, timeout_ms=policy.after_s * 1000 + 2000,
                                     after_ms=answer[0])
        assert nudge is not None and len(nudges(llm)) == 1  # awake: it does
        await pipe.close()

    run(main())


def test_closing_the_call_stops_a_nudge_in_progress_and_no_more_come() -> None:
    async def main() -> None:
        llm = FakeLLM("Are you still there? I am here if you want to talk.", token_delay_s=0.05)
        pipe, drv, _ = make_pipeline(stt=ToneSTT(), llm=llm,
                                     layers={"conversational_flow": {"idle_engagement": "eager"}})
        await pipe.start()
        assert await drv.run_until(lambda: llm.started == 1, timeout_ms=10_000)
        await pipe.close()
        assert pipe.owned_tasks() == [] and llm.closed == 1  # the generation was cancelled
        for _ in range(600):  # the transport may pull a little longer: nothing starts
            pipe.read_audio(320)
        assert llm.started == 1

    run(main())


def test_echo_mode_refuses_them_and_off_is_the_default() -> None:
    for flow in ({"idle_engagement": "patient"}, {"wake_phrase": "hey ana"}):
        with pytest.raises(ValueError, match="needs pipeline_mode full"):
            PipelineConfig.from_layers("", "", {"conversational_flow": flow}, pipeline_mode="echo")
    cfg = PipelineConfig.from_layers("", "", {"conversational_flow": {"idle_engagement": "off"}},
                                     pipeline_mode="echo")
    assert cfg.flow.idle_policy is None and PipelineConfig().flow.idle_policy is None
    assert PipelineConfig.from_layers("p", "", {"conversational_flow": {"idle_engagement": "patient"}}
                                      ).flow.idle_policy == IDLE_ENGAGEMENT["patient"]
