"""Remote TTS engines (OpenAI-compatible speech, ElevenLabs, Cartesia, Azure) against a local
server that speaks for real: what each sends, that the streamed PCM comes back whole, that
failures are clear, and that a PAL using one speaks in a pipeline."""
from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from engine_helpers import words_of

from conversations.realtime.engines import registry
from conversations.realtime.engines.base import EngineError, VoiceOptions
from conversations.realtime.engines.cloud_tts import AzureTTS, CartesiaTTS, ElevenLabsTTS, OpenAISpeechTTS
from tests.conversations.realtime.engines.speech_server import SpeechServer

TEXT = "The ocean is deep and blue."


def collect(tts, text=TEXT, voice=VoiceOptions(language="en")):
    async def main():
        try:
            return [c async for c in tts.synthesize(text, voice=voice)]
        finally:
            await tts.aclose()
    return asyncio.run(asyncio.wait_for(main(), 60))


@pytest.mark.parametrize("engine, expect_path, expect_header", [
    ("openai-tts", "/v1/audio/speech", ("authorization", "Bearer k-1")),
    ("elevenlabs", "/v1/text-to-speech/voice-9/stream/with-timestamps?output_format=pcm_24000", ("xi-api-key", "k-1")),
    ("cartesia", "/tts/sse", ("x-api-key", "k-1")),
])
def test_each_engine_sends_its_providers_request_and_streams_the_audio_back(engine, expect_path, expect_header):
    with SpeechServer() as server:
        base = server.url + ("/v1" if engine == "openai-tts" else "")
        tts = registry.get_tts(engine, api_key="k-1", voice_id="voice-9", model="m-2", base_url=base)
        chunks = collect(tts, voice=VoiceOptions(language="en", speed=1.25))
    assert len(server.requests) == 1
    req = server.requests[0]
    assert req["path"] == expect_path
    assert req["headers"][expect_header[0]] == expect_header[1]
    pcm = np.concatenate([c.pcm for c in chunks])
    assert all(c.sample_rate == 24_000 for c in chunks) and len(chunks) > 3  # streamed, not one blob
    assert pcm.tobytes() == server.sent[0]  # every sample, in order, none lost at chunk edges
    body = json.loads(req["body"])
    if engine == "openai-tts":
        assert body == {"model": "m-2", "input": TEXT, "voice": "voice-9", "response_format": "pcm", "speed": 1.25}
        assert chunks[0].text == TEXT and not any(c.phonemes for c in chunks)  # no timings: energy moves the mouth
    elif engine == "elevenlabs":
        assert body["text"] == TEXT and body["model_id"] == "m-2" and body["voice_settings"]["speed"] == 1.25
    else:
        assert body["transcript"] == TEXT and body["voice"] == {"mode": "id", "id": "voice-9"}
        assert body["output_format"] == {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24_000}
        assert body["add_timestamps"] and body["add_phoneme_timestamps"]


def absolute_timings(chunks):
    """[(word, start_ms)], [(phoneme, start_ms)] over the whole phrase, from chunk-relative timings."""
    words, phonemes, offset = [], [], 0.0
    for c in chunks:
        words += [(w.word, offset + w.start_ms) for w in c.words]
        phonemes += [(p.phoneme, offset + p.start_ms) for p in c.phonemes]
        offset += c.duration_ms
    return words, phonemes


def assert_timed_like_the_speech(chunks, spoken_words):
    """The chunks carry the phrase's text once, cut at word ends, each word at the time it was
    spoken (as the service timed it), with phoneme timings that open and close the mouth."""
    assert " ".join(c.text for c in chunks if c.text) == TEXT
    for c in chunks:
        for w in c.words:
            assert c.text[w.char_start: w.char_start + w.char_len] == w.word
            assert 0 <= w.start_ms <= w.end_ms <= c.duration_ms + 1
        starts = [p.start_ms for p in c.phonemes]
        assert starts == sorted(starts) and all(0 <= t <= c.duration_ms + 1 for t in starts)
    words, phonemes = absolute_timings(chunks)
    assert [w for w, _ in words] == [w for w, _, _ in spoken_words]
    for (_, got), (_, want, _) in zip(words, spoken_words):
        assert abs(got - want) < 1.0
    names = {p for p, _ in phonemes}
    assert names & {"p", "b", "m", "_"} and names & {"a", "A:", "V", "O:", "E", "i", "aI", "aU", "0", "o", "@", "eI"}


@pytest.mark.parametrize("engine", ["elevenlabs", "cartesia"])
def test_services_that_time_their_speech_move_the_mouth_with_it(engine):
    with SpeechServer() as server:
        chunks = collect(registry.get_tts(engine, api_key="k", voice_id="v", base_url=server.url))
    from tests.conversations.realtime.engines.speech_server import speak

    assert_timed_like_the_speech(chunks, speak(TEXT)[1])


def test_azure_speaks_through_the_sdk_with_visemes_and_word_boundaries():
    from tests.conversations.realtime.engines.azure_server import AzureSpeechServer
    from tests.conversations.realtime.engines.speech_server import speak

    with AzureSpeechServer() as server:
        tts = registry.get_tts("azure", api_key="k-1", voice_id="en-US-GuyNeural", base_url=server.host)
        chunks = collect(tts, voice=VoiceOptions(language="en", speed=1.25))
    hello = server.handshakes[0]
    assert hello["path"] == "/cognitiveservices/websocket/v1" and hello["headers"]["ocp-apim-subscription-key"] == "k-1"
    context = next(m for m in server.messages if "Path:synthesis.context" in m)
    assert '"outputFormat":"raw-24khz-16bit-mono-pcm"' in context and '"visemeEnabled":true' in context
    ssml = next(m for m in server.messages if "Path:ssml" in m)
    assert "<voice name='en-US-GuyNeural'>" in ssml and "rate='+25%'" in ssml and TEXT in ssml
    assert np.concatenate([c.pcm for c in chunks]).tobytes() == server.sent[0]
    assert_timed_like_the_speech(chunks, speak(TEXT)[1])


def test_azure_events_map_to_the_faces_visemes():
    """A recorded SDK event sequence (as the service sends "Hi, Bob."): visemes land on the
    face's phonemes at their offsets, words on the text, audio whole; a late viseme does not
    hold the audio back once the stream ends."""
    from conversations.realtime.engines.azure_speech import apply_tts_event
    from conversations.realtime.engines.timings import TimedChunker

    tick = 10_000  # per ms
    events = [("word", "Hi", 50 * tick, 200.0, 0), ("word", ",", 250 * tick, 0.0, 1),
              ("viseme", 0, 0), ("viseme", 12, 50 * tick), ("viseme", 11, 110 * tick), ("viseme", 0, 250 * tick),
              ("audio", b"\x00\x01" * 7200), ("word", "Bob", 330 * tick, 250.0, 0),
              ("viseme", 21, 330 * tick), ("viseme", 3, 400 * tick), ("audio", b"\x00\x01" * 7200),
              ("viseme", 21, 540 * tick), ("viseme", 0, 580 * tick), ("done",)]
    chunker = TimedChunker("Hi, Bob.", 24_000)
    state, out = {}, []
    for event in events:
        done = apply_tts_event(chunker, event, state=state)
        out += chunker.chunks(final=done)
    # cut at the end of each word; the silence after the last one comes last
    assert [(c.text, c.duration_ms) for c in out] == [("Hi,", 250.0), ("Bob.", 330.0), ("", 20.0)]
    assert [(p.phoneme, p.start_ms) for p in out[0].phonemes] == [("_", 0.0), ("h", 50.0), ("aI", 110.0)]
    assert [(w.word, w.start_ms, w.end_ms) for w in out[0].words] == [("Hi", 50.0, 250.0)]
    second = [(p.phoneme, round(p.start_ms)) for p in out[1].phonemes]
    assert second == [("_", 0), ("p", 80), ("O:", 150), ("p", 290)]
    assert [(w.word, w.start_ms, w.end_ms) for w in out[1].words] == [("Bob", 80.0, 330.0)]
    assert [p.phoneme for p in out[2].phonemes] == ["_"]
    assert sum(len(c.pcm) for c in out) == 14_400


def test_azure_failures_are_clear():
    from tests.conversations.realtime.engines.azure_server import AzureSpeechServer

    with AzureSpeechServer(refuse=True) as server:
        with pytest.raises(EngineError, match="azure at http://127.0.0.1:.* failed: .*") as err:
            collect(registry.get_tts("azure", api_key="wrong", base_url=server.host))
    assert "wrong" not in str(err.value)
    with pytest.raises(EngineError, match="needs voice_settings.region or base_url"):
        registry.get_tts("azure", api_key="k")
    with pytest.raises(EngineError, match="base_url must be http"):
        registry.get_tts("azure", api_key="k", base_url="ftp://example.com")


def test_provider_errors_are_clear():
    with SpeechServer(fail_status=401) as server:
        tts = ElevenLabsTTS(api_key="wrong", voice_id="v", base_url=server.url)
        with pytest.raises(EngineError, match="elevenlabs answered HTTP 401: .*Invalid API key"):
            collect(tts)
    with pytest.raises(EngineError, match="cannot reach the cartesia TTS at http://127.0.0.1:9") as err:
        collect(CartesiaTTS(api_key="k", voice_id="v", base_url="http://127.0.0.1:9"))
    assert err.value.code == "tts_unreachable"
    with pytest.raises(EngineError, match="needs api_key and voice_id"):
        registry.get_tts("elevenlabs")
    assert AzureTTS(api_key="k", settings={"region": "westeurope"}).url == \
        "https://westeurope.tts.speech.microsoft.com"


def test_the_engines_are_listed_with_what_they_need():
    tts = {e["name"]: e for e in registry.available_engines()["tts"]}
    assert set(tts) == {"espeak-ng", "piper", "openai-tts", "elevenlabs", "cartesia", "azure"}
    assert tts["piper"]["voices"] == ["en_US-joe-medium"] and tts["piper"]["embedded"]
    assert tts["elevenlabs"]["requires"] == ["api_key", "voice_id"] and not tts["elevenlabs"]["embedded"]
    assert isinstance(registry.get_tts("openai", base_url="http://127.0.0.1:9/v1"), OpenAISpeechTTS)


@pytest.mark.slow
def test_a_pal_on_a_remote_tts_speaks_in_the_pipeline(speak_back):
    """Echo mode with a PAL whose TTS is an OpenAI-compatible server: the reply audio that the
    transport pulls is that server's speech (Whisper hears the words), with the usual events."""
    from bench.harness import RealtimeDriver
    from conversations.realtime import events as ev
    from conversations.realtime.agent import ConversationPipeline, EngineBundle
    from conversations.realtime.config import PipelineConfig
    from tests.conversations.realtime.realtime_fakes import run

    with SpeechServer() as server:
        cfg = PipelineConfig.from_layers("", "", {"tts": {"tts_engine": "openai-tts", "base_url": server.url + "/v1",
                                                          "voice_id": "af_bella"}}, pipeline_mode="echo")
        tts = registry.get_tts(cfg.tts.tts_engine, voice_id=cfg.tts.voice_id, base_url=cfg.tts.base_url)

        async def main():
            pipe = ConversationPipeline(cfg, EngineBundle(vad=registry.get_vad(), stt=None, llm=None, tts=tts),
                                        conversation_id="ccloud")
            drv = RealtimeDriver(pipe, speed=10.0)
            await pipe.start()
            await pipe.handle_client_message({"event_type": "conversation.echo", "properties": {
                "modality": "text", "text": "Remote voices work here too.", "done": True}})
            hit = await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=30_000)
            await pipe.close()
            await tts.aclose()
            return hit, drv.rec.audio()

        hit, audio = run(main(), timeout=120)
    assert hit is not None and not hit[1]["properties"]["interrupted"]
    assert json.loads(server.requests[0]["body"])["voice"] == "af_bella"
    heard = speak_back(audio)
    assert len({"remote", "voices", "work", "here", "too"} & set(words_of(heard))) >= 4, heard


@pytest.fixture
def speak_back(stt):
    """48 kHz int16 reply audio -> what Whisper hears in it."""
    from conversations.realtime.audio import resample

    def _hear(audio: np.ndarray) -> str:
        pcm = resample(audio.astype(np.float32) / 32768, 48_000, 16_000)
        return stt.transcribe_blocking(pcm, language="en").text
    return _hear


def test_timings_that_come_after_the_audio_went_on_without_them_are_ignored():
    """A stream that sent no timings for its first audio goes on untimed to its end: timings
    arriving later cannot give the phrase's text a second time (seen under load with Azure)."""
    from conversations.realtime.engines.base import WordTiming
    from conversations.realtime.engines.timings import TimedChunker

    chunker = TimedChunker("Hello there.", 24_000, untimed_after_ms=100.0)
    chunker.add_audio(b"\x00\x01" * 4800)  # 200 ms
    out = chunker.chunks()
    chunker.add_words([WordTiming("Hello", 0, 90, 0, 5), WordTiming("there", 90, 180, 6, 5)])
    chunker.add_audio(b"\x00\x01" * 2400)
    out += chunker.chunks() + chunker.chunks(final=True)
    assert [c.text for c in out if c.text] == ["Hello there."]
    assert not any(c.words or c.phonemes for c in out) and sum(len(c.pcm) for c in out) == 7200
