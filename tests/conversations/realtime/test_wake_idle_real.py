"""Wake phrase and idle engagement through the real embedded engines (Silero VAD, Whisper base,
Qwen 0.5B on llama.cpp, eSpeak NG), on speech made by eSpeak NG, in real time like a transport.
(The logic in isolation: test_wake_idle.py.)"""
from __future__ import annotations

import numpy as np
import pytest

from conversations.realtime import events as ev
from conversations.realtime.agent import EngineBundle
from conversations.realtime.audio import resample
from conversations.realtime.levels import IDLE_ENGAGEMENT
from conversations.realtime.idle import NUDGE_NOTE
from conversations.realtime.engines.base import VoiceOptions
from conversations.realtime.events import WAKE_PHRASE_DETECTED
from tests.conversations.realtime.engines.engine_helpers import words_of as words
from tests.conversations.realtime.realtime_fakes import run
from tests.conversations.realtime.test_pipeline_real import WAIT_S, make, replica_turns, user_turns

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def patient_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    """A shared CPU may be busy: the LLM's first token gets more time than the hang guard."""
    from conversations.realtime import stages

    monkeypatch.setattr(stages, "LLM_FIRST_TOKEN_TIMEOUT_S", float(WAIT_S))


@pytest.fixture(scope="module")
def engines() -> EngineBundle:
    from conversations.realtime.engines import registry

    return EngineBundle(vad=registry.get_vad(), stt=registry.get_stt(), llm=registry.get_llm(),
                        tts=registry.get_tts())


@pytest.fixture(scope="module")
def speak(engines: EngineBundle):  # noqa: ANN201
    """Text -> float32 mono 16 kHz speech from eSpeak NG, as the mic path delivers it."""

    def _speak(text: str, voice: str = "en-us") -> np.ndarray:
        chunks = engines.tts.synthesize_blocking(text, voice=VoiceOptions(voice=voice))
        pcm = np.concatenate([c.pcm for c in chunks]).astype(np.float32) / 32768.0
        return resample(pcm, engines.tts.sample_rate, 16_000)

    return _speak


def test_a_turn_without_the_wake_phrase_gets_no_reply_and_one_with_it_does(engines: EngineBundle, speak) -> None:  # noqa: ANN001
    async def main() -> None:
        pipe, drv = make(engines, layers={"conversational_flow": {"wake_phrase": "Okay computer"}})
        await pipe.start()
        await drv.silence(300)
        await drv.play(speak("What is the weather like today?", "en-us"))
        heard = await drv.wait_event(ev.UTTERANCE, timeout_ms=WAIT_S * 1000,
                                     where=lambda e: e["properties"]["role"] == "user")
        assert heard is not None
        # the turn was heard (Whisper tiny.en once wrote "What is the winner like today?" for eSpeak's voice)
        heard_words = set(words(heard[1]["properties"]["speech"]))
        assert len({"what", "weather", "like", "today"} & heard_words) >= 3, heard_words
        await drv.silence(3000)  # time enough for a reply to start, were one coming
        assert drv.rec.of_type(ev.REPLICA_STARTED) == [] and pipe.history == []
        assert drv.rec.of_type(WAKE_PHRASE_DETECTED) == [] and pipe.wake.unanswered == 1

        t = drv.t_ms
        await drv.play(speak("Okay computer, please tell me something about the ocean.", "en-us"))
        stopped = await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=WAIT_S * 1000, after_ms=t)
        assert stopped is not None and stopped[1]["properties"]["interrupted"] is False
        assert drv.rec.first(WAKE_PHRASE_DETECTED) is not None
        turns = user_turns(drv)
        assert len(turns) == 2 and "computer" in words(turns[1]), turns
        replies = replica_turns(drv)
        assert len(replies) == 1 and len(words(replies[0][1])) >= 2, replies
        # the LLM was given the answered turn only
        assert [m["role"] for m in pipe.history] == ["user", "assistant"]
        assert "computer" in words(pipe.history[0]["content"])
        await pipe.close()

    run(main(), timeout=3 * WAIT_S)


def test_after_a_silence_the_agent_speaks_up_with_a_line_of_its_own(engines: EngineBundle, speak) -> None:  # noqa: ANN001
    policy = IDLE_ENGAGEMENT["eager"]

    async def main() -> None:
        pipe, drv = make(engines, layers={"conversational_flow": {"idle_engagement": "eager"}})
        await pipe.start()
        await drv.silence(300)
        await drv.play(speak("I am planning a trip to Italy next summer.", "en-us"))
        answer = await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=WAIT_S * 1000)
        assert answer is not None
        nudge = await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=(WAIT_S + policy.after_s) * 1000,
                                     after_ms=answer[0])
        assert nudge is not None and nudge[1]["properties"]["interrupted"] is False
        started = drv.rec.first(ev.REPLICA_STARTED, after_ms=answer[0])
        assert started[0] - answer[0] >= policy.after_s * 1000
        replies = replica_turns(drv)
        assert len(replies) == 2, replies
        said = replies[1][1]
        print("nudge:", said)
        # written by the LLM for this moment: words of its own, not the note read out
        assert len(words(said)) >= 3 and said != replies[0][1]
        assert "seconds" not in words(said)
        assert [m["role"] for m in pipe.history] == ["user", "assistant"] * 2
        assert pipe.history[2]["content"].startswith(NUDGE_NOTE.split("{")[0])  # the note, then the nudge
        assert [e["properties"]["source"] for _, e in drv.rec.of_type(ev.TURN_METRICS)] == ["speech", "idle"]
        await pipe.close()

    run(main(), timeout=3 * WAIT_S)
