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
    ("elevenlabs", "/v1/text-to-speech/voice-9/stream?output_format=pcm_24000", ("xi-api-key", "k-1")),
    ("cartesia", "/tts/bytes", ("x-api-key", "k-1")),
    ("azure", "/cognitiveservices/v1", ("ocp-apim-subscription-key", "k-1")),
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
    assert chunks[0].text == TEXT and not chunks[0].phonemes  # no timings: the mouth follows energy
    if engine == "azure":
        ssml = req["body"].decode()
        assert "<voice name='voice-9'>" in ssml and "rate='+25%'" in ssml and TEXT in ssml
        assert req["headers"]["x-microsoft-outputformat"] == "raw-24khz-16bit-mono-pcm"
    else:
        body = json.loads(req["body"])
        if engine == "openai-tts":
            assert body == {"model": "m-2", "input": TEXT, "voice": "voice-9", "response_format": "pcm", "speed": 1.25}
        elif engine == "elevenlabs":
            assert body["text"] == TEXT and body["model_id"] == "m-2" and body["voice_settings"]["speed"] == 1.25
        else:
            assert body["transcript"] == TEXT and body["voice"] == {"mode": "id", "id": "voice-9"}
            assert body["output_format"] == {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24_000}


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
    with pytest.raises(EngineError, match="azure TTS engine needs a base_url"):
        AzureTTS(api_key="k")
    assert AzureTTS(api_key="k", settings={"region": "westeurope"}).base_url == \
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
    from conversations.realtime import events as ev
    from conversations.realtime.agent import ConversationPipeline, EngineBundle
    from conversations.realtime.config import PipelineConfig
    from conversations.realtime.harness import RealtimeDriver
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
