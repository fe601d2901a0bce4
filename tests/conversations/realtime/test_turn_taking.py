"""Turn-taking decisions: completeness heuristic, patience, speculation, barge-in (fake engines,
virtual time: 20 ms of audio per tick, pushed as fast as the logic runs)."""
from __future__ import annotations

import numpy as np
import pytest
from tests.conversations.realtime.realtime_fakes import (
    FakeLLM,
    FakeSTT,
    FakeTurnModel,
    make_pipeline,
    run,
    silence,
    words_audio,
)

from conversations.realtime import events as ev
from conversations.realtime.levels import PATIENCE_WAITS
from conversations.realtime.completeness import (
    Completeness,
    assess_completeness,
    clean_transcript,
    count_content_words,
)
from conversations.realtime.turn_policy import judge_turn


@pytest.mark.parametrize("text, expected", [
    ("What time is it?", Completeness.COMPLETE),
    ("I would like a coffee please.", Completeness.COMPLETE),
    ("That's great!", Completeness.COMPLETE),
    ("I want to go to the", Completeness.INCOMPLETE),
    ("I was thinking about going to the.", Completeness.INCOMPLETE),  # Whisper adds a stop
    ("So I went there and", Completeness.INCOMPLETE),
    ("Well, um", Completeness.INCOMPLETE),
    ("My favourite colour is,", Completeness.INCOMPLETE),
    ("I was going to...", Completeness.INCOMPLETE),
    ("If it rains tomorrow.", Completeness.INCOMPLETE),
    ("If it rains tomorrow, we stay home.", Completeness.COMPLETE),
    ("If it rains, will you come?", Completeness.COMPLETE),
    ("Yes.", Completeness.NEUTRAL),
    ("Paris", Completeness.NEUTRAL),
    ("", Completeness.NEUTRAL),
])
def test_completeness(text: str, expected: Completeness) -> None:
    assert assess_completeness(text) is expected


def test_completeness_other_languages_use_punctuation_only() -> None:
    assert assess_completeness("¿Qué hora es?", "es") is Completeness.COMPLETE
    assert assess_completeness("Quiero ir a la", "es") is Completeness.NEUTRAL
    assert assess_completeness("Quiero ir a la,", "es") is Completeness.INCOMPLETE


def test_backchannels_have_no_content_words() -> None:
    for t in ("Mm-hmm.", "Uh-huh", "Yeah, yeah.", "Okay.", "I see.", "Right, got it.", "[coughs]",
              "(laughs)", "", "M. M.", "Uh uh.", "Uhuh.", "Mmhm", "M-M-M", "Hmm-hmm"):
        assert count_content_words(t) == 0, t
    assert count_content_words("Wait, stop please") == 3
    assert count_content_words("Yeah but what about Paris?") == 4
    assert clean_transcript("[coughs] Hello (laughs) there ♪la♪") == "Hello there"


def _turns(rec):  # noqa: ANN001, ANN202
    return [e["properties"]["speech"] for _, e in rec.of_type(ev.UTTERANCE)
            if e["properties"]["role"] == "user"]


def test_complete_sentence_ends_the_turn_after_the_short_wait() -> None:
    async def main() -> None:
        pipe, drv, eng = make_pipeline(stt=FakeSTT("What time is it?"))
        await pipe.start()
        await drv.silence(100)
        await drv.play(words_audio(4))
        end_of_speech = drv.t_ms
        hit = await drv.wait_event(ev.UTTERANCE, timeout_ms=3000)
        assert hit is not None and hit[1]["properties"]["speech"] == "What time is it?"
        waited = hit[0] - end_of_speech
        assert PATIENCE_WAITS["medium"].complete_ms <= waited <= PATIENCE_WAITS["medium"].complete_ms + 100
        m = pipe.turn_metrics or None
        await drv.wait_event(ev.TURN_METRICS, timeout_ms=5000)
        m = pipe.turn_metrics[-1]
        d = m.as_dict()
        assert d["speculative"] and d["llm_started_ms"] < d["turn_decided_ms"]  # thought ahead
        assert d["first_audio_played_ms"] >= d["turn_decided_ms"]  # but spoke only after
        await pipe.close()

    run(main())


def test_pause_mid_sentence_does_not_end_the_turn_at_medium_patience() -> None:
    async def main() -> None:
        llm = FakeLLM("Sounds lovely.")
        pipe, drv, eng = make_pipeline(stt=FakeSTT("I want to go to the beach tomorrow."), llm=llm)
        await pipe.start()
        await drv.play(words_audio(3))  # "I want to"
        await drv.silence(1000)  # longer than the "no signal" wait (800 ms), shorter than 1600
        assert _turns(drv.rec) == []
        assert drv.rec.of_type(ev.REPLICA_STARTED) == []
        await drv.play(words_audio(5))  # "go to the beach tomorrow."
        hit = await drv.wait_event(ev.UTTERANCE, timeout_ms=3000)
        assert hit is not None
        assert _turns(drv.rec) == ["I want to go to the beach tomorrow."]
        # it thought about "I want to" at the pause, and threw that away
        assert llm.requests[0][-1]["content"] == "I want to"
        assert llm.requests[-1][-1]["content"] == "I want to go to the beach tomorrow."
        await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=5000)
        assert pipe.history == [
            {"role": "user", "content": "I want to go to the beach tomorrow."},
            {"role": "assistant", "content": "Sounds lovely."},
        ]
        await pipe.close()

    run(main())


@pytest.mark.parametrize("patience", ["low", "medium", "high"])
def test_patience_sets_the_wait(patience: str) -> None:
    async def main() -> int:
        pipe, drv, _ = make_pipeline(stt=FakeSTT("Yes"),
                                     layers={"conversational_flow": {"turn_taking_patience": patience}})
        await pipe.start()
        await drv.play(words_audio(1))
        end = drv.t_ms
        hit = await drv.wait_event(ev.UTTERANCE, timeout_ms=4000)
        await pipe.close()
        assert hit is not None
        return hit[0] - end

    waited = run(main())
    neutral = PATIENCE_WAITS[patience].neutral_ms
    assert neutral <= waited <= neutral + 100


def test_smart_turn_detection_off_uses_the_neutral_wait() -> None:
    async def main() -> float:
        pipe, drv, _ = make_pipeline(stt=FakeSTT("What time is it?"),
                                     layers={"stt": {"smart_turn_detection": False}})
        await pipe.start()
        await drv.play(words_audio(4))
        end = drv.t_ms
        hit = await drv.wait_event(ev.UTTERANCE, timeout_ms=4000)
        await pipe.close()
        assert hit is not None
        return hit[0] - end

    waited = run(main())
    assert PATIENCE_WAITS["medium"].neutral_ms <= waited <= PATIENCE_WAITS["medium"].neutral_ms + 100


def test_without_speculative_inference_the_llm_waits_for_the_turn() -> None:
    async def main() -> None:
        llm = FakeLLM("Fine.")
        pipe, drv, _ = make_pipeline(stt=FakeSTT("I want to go to the beach tomorrow."), llm=llm,
                                     layers={"llm": {"speculative_inference": False}})
        await pipe.start()
        await drv.play(words_audio(3))
        await drv.silence(1000)
        await drv.play(words_audio(5))
        await drv.wait_event(ev.TURN_METRICS, timeout_ms=5000)
        assert len(llm.requests) == 1  # nothing speculative was started
        d = pipe.turn_metrics[-1].as_dict()
        assert not d["speculative"] and d["llm_started_ms"] >= d["turn_decided_ms"]
        await pipe.close()

    run(main())


def test_speculative_reply_is_never_heard_before_the_turn_is_decided() -> None:
    async def main() -> None:
        llm = FakeLLM("A reply that was ready early.")
        pipe, drv, _ = make_pipeline(stt=FakeSTT("I want to go to the beach tomorrow and swim."), llm=llm)
        await pipe.start()
        await drv.play(words_audio(3))
        await drv.silence(700)  # the speculative reply is fully synthesised by now
        assert llm.started == 1 and pipe.output.queued_ms > 0
        assert not np.any(drv.rec.audio())  # and not a sample of it was played
        await drv.play(words_audio(6))
        assert pipe.output.queued_ms == 0  # discarded when the user went on
        assert not np.any(drv.rec.audio())
        await pipe.close()

    run(main())


def test_noise_without_words_is_not_a_turn() -> None:
    async def main() -> None:
        pipe, drv, _ = make_pipeline(stt=FakeSTT(lambda n: "[coughs]"))
        await pipe.start()
        await drv.play(words_audio(1))
        await drv.silence(2500)
        assert _turns(drv.rec) == [] and pipe.stats["turns"] == 0
        assert drv.rec.of_type(ev.USER_STARTED)  # it was speech to the VAD, though
        await pipe.close()

    run(main())


def test_mic_48k_int16_frames_are_resampled() -> None:
    async def main() -> None:
        pipe, drv, _ = make_pipeline(stt=FakeSTT("Hello there my friend."))
        await pipe.start()
        audio16 = np.concatenate([words_audio(4), silence(1500)])
        # the same audio as a browser sends it: 20 ms int16 frames at 48 kHz
        t = np.arange(int(len(audio16) * 3)) / 48_000
        idx = np.minimum((t * 16_000).astype(int), len(audio16) - 1)
        audio48 = (audio16[idx] * 32767).astype(np.int16)
        for i in range(0, len(audio48), 960):
            pipe.push_audio(audio48[i:i + 960], 48_000)
            pipe.read_audio(320)
            drv.clock.advance(0.02)
            await drv._pace()
        await drv.silence(200)
        assert _turns(drv.rec) == ["Hello there my friend."]
        assert pipe.stats["dropped_input_ms"] == 0
        await pipe.close()

    run(main())


def test_a_monologue_longer_than_the_stt_window_is_cut_into_turns() -> None:
    async def main() -> None:
        stt = FakeSTT(lambda n: " ".join(["word"] * n) + ".")
        pipe, drv, _ = make_pipeline(stt=stt, llm=FakeLLM("Okay."))
        await pipe.start()
        await drv.play(words_audio(100))  # ~32 s without a pause
        hit = drv.rec.first(ev.UTTERANCE)
        assert hit is not None and hit[0] <= 26_000  # decided while the user was still talking
        assert len(hit[1]["properties"]["speech"].split()) >= 70
        await pipe.close()

    run(main())


# ---------------------------------------------------------------------------- the end-of-turn model
@pytest.mark.parametrize("transcript, p, expected", [
    (Completeness.NEUTRAL, 0.9, Completeness.COMPLETE),  # "Yes." said like an answer
    (Completeness.COMPLETE, 0.9, Completeness.COMPLETE),
    (Completeness.INCOMPLETE, 0.99, Completeness.INCOMPLETE),  # "... to the": the words veto
    (Completeness.NEUTRAL, 0.2, Completeness.INCOMPLETE),  # sounds unfinished: the long wait
    (Completeness.COMPLETE, 0.2, Completeness.COMPLETE),  # finished words lower the bar to a quarter
    (Completeness.COMPLETE, 0.05, Completeness.NEUTRAL),  # a clear "not yet" still wins
    (Completeness.COMPLETE, None, Completeness.COMPLETE),  # no model: the transcript decides
    (Completeness.INCOMPLETE, None, Completeness.INCOMPLETE),
])
def test_judge_turn_combines_the_model_and_the_transcript(transcript, p, expected) -> None:
    assert judge_turn(transcript, p, PATIENCE_WAITS["medium"]) is expected
    assert judge_turn(transcript, p, PATIENCE_WAITS["medium"], smart=False) is Completeness.NEUTRAL


def test_patience_sets_the_model_threshold() -> None:
    assert judge_turn(Completeness.NEUTRAL, 0.6, PATIENCE_WAITS["low"]) is Completeness.COMPLETE
    assert judge_turn(Completeness.NEUTRAL, 0.6, PATIENCE_WAITS["high"]) is Completeness.INCOMPLETE


def _wait_for_turn(p: float, *, layers: dict | None = None, text: str = "Yes") -> tuple[float, FakeTurnModel, dict]:
    model = FakeTurnModel(p)

    async def main() -> tuple[float, dict]:
        pipe, drv, _ = make_pipeline(stt=FakeSTT(text), turn=model, layers=layers)
        await pipe.start()
        await drv.play(words_audio(1))
        end = drv.t_ms
        hit = await drv.wait_event(ev.UTTERANCE, timeout_ms=4000)
        await drv.wait_event(ev.TURN_METRICS, timeout_ms=5000)
        record = pipe.turn_metrics[-1].as_dict()
        await pipe.close()
        assert hit is not None
        return hit[0] - end, record

    waited, record = run(main())
    return waited, model, record


def test_the_model_hearing_a_finished_turn_ends_it_after_the_shortest_wait() -> None:
    waited, model, record = _wait_for_turn(0.9)
    waits = PATIENCE_WAITS["medium"]
    assert model.calls >= 1
    assert waits.complete_ms <= waited <= waits.complete_ms + 100
    assert record["turn_judgement"] == "complete" and record["turn_p"] == 0.9


def test_the_model_hearing_an_unfinished_turn_waits_longest() -> None:
    waited, _, record = _wait_for_turn(0.1)
    waits = PATIENCE_WAITS["medium"]
    assert waits.incomplete_ms <= waited <= waits.incomplete_ms + 100
    assert record["turn_judgement"] == "incomplete"


def test_turn_detection_vad_waits_for_the_pause_only() -> None:
    waited, model, record = _wait_for_turn(0.9, layers={"conversational_flow": {"turn_detection_model": "vad"}})
    neutral = PATIENCE_WAITS["medium"].neutral_ms
    assert neutral <= waited <= neutral + 100
    assert model.calls == 0 and record["turn_p"] is None


def test_the_model_is_not_asked_about_a_language_it_does_not_know() -> None:
    # Spanish is not FakeTurnModel's: the transcript alone judges ("Sí" is neutral)
    model = FakeTurnModel(0.9)

    async def main() -> float:
        from conversations.realtime.agent import ConversationPipeline
        from conversations.realtime.config import PipelineConfig

        pipe, drv, engines = make_pipeline(stt=FakeSTT("Sí"), turn=model)
        cfg = PipelineConfig.from_layers("You are a test.", "", {}, language="spanish")
        pipe = ConversationPipeline(cfg, engines, conversation_id="ctest", clock=drv.clock,
                                    output_sample_rate=16_000)
        drv.pipeline = pipe
        await pipe.start()
        await drv.play(words_audio(1))
        end = drv.t_ms
        hit = await drv.wait_event(ev.UTTERANCE, timeout_ms=4000)
        await pipe.close()
        assert hit is not None
        return hit[0] - end

    neutral = PATIENCE_WAITS["medium"].neutral_ms
    assert neutral <= run(main()) <= neutral + 100


def test_the_pals_max_tokens_and_temperature_reach_the_llm() -> None:
    async def main() -> FakeLLM:
        llm = FakeLLM("Fine.")
        pipe, drv, _ = make_pipeline(stt=FakeSTT("What time is it?"), llm=llm,
                                     layers={"llm": {"max_tokens": 33, "temperature": 0.2}})
        await pipe.start()
        await drv.play(words_audio(4))
        await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=5000)
        await pipe.close()
        return llm

    llm = run(main())
    assert llm.sampling and all(s == {"max_tokens": 33, "temperature": 0.2} for s in llm.sampling)
