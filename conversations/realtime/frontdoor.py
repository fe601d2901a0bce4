"""The realtime package's front door: what the Django side asks of it, in one place.

Engines are built here from a parsed ``PipelineConfig`` and nowhere else, so a live call, the PAL
editor's "Test connection" and "Preview voice", and the benchmarks get the same engine for the
same layer options (the options are parsed once, by ``PipelineConfig.from_layers``). The engine
and option catalogue the API and the editor show comes from here too.
"""
from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator
from typing import Any

from conversations.realtime import layerspec
from conversations.realtime.agent import EngineBundle
from conversations.realtime.config import LLMConfig, PipelineConfig, TTSConfig
from conversations.realtime.emotion import strip_tags
from conversations.realtime.engines import registry
from conversations.realtime.engines.base import EngineError, VoiceOptions
from conversations.realtime.engines.embeddings import embedded_embedder
from conversations.realtime.pronounce import with_pronunciation

#: what "Test connection" asks the model
TEST_PROMPT = [
    {"role": "system", "content": "You are checking that a connection works. Answer in one short, friendly sentence."},
    {"role": "user", "content": "Say hello and tell me which model you are."},
]


def build_llm(config: LLMConfig, *, timeout: float | None = None):
    """The PAL's language model: the box's embedded model (loaded once per process, or its LLM
    service) or a client of the PAL's own endpoint. Blocking: call it in a thread."""
    remote: dict[str, Any] = {}
    if config.base_url:
        remote = dict(base_url=config.base_url, api_key=config.api_key or None, headers=dict(config.headers),
                      extra_body=dict(config.extra_body), default_query=dict(config.default_query))
        if timeout is not None:
            remote["timeout"] = timeout
    return registry.get_llm(config.model or None, model=config.model or None, **remote)


def build_tts(config: TTSConfig):
    """The PAL's voice engine (speed is applied per utterance, not here), speaking with the PAL's
    pronunciation dictionary when it has one (``pronounce.py``). Blocking."""
    engine = registry.get_tts(config.tts_engine or None, api_key=config.api_key, voice_id=config.voice_id,
                              model=config.tts_model_name, base_url=config.base_url,
                              settings={k: v for k, v in config.voice_settings.items() if k != "speed"})
    return with_pronunciation(engine, config.pronunciation)


def build_engines(config: PipelineConfig) -> EngineBundle:
    """The engines a call of this PAL runs: embedded ones are loaded once per process and shared
    by every session; a remote endpoint gets a client of its own. Blocking: call it in a thread."""
    echo = config.pipeline_mode == "echo"
    return EngineBundle(
        vad=registry.get_vad(),
        tts=build_tts(config.tts),
        stt=None if echo else registry.get_stt(config.stt.stt_engine or None, language=config.language_code,
                                               api_key=config.stt.api_key, base_url=config.stt.base_url),
        llm=None if echo else build_llm(config.llm),
        turn=registry.get_turn_model() if not echo and config.flow.smart_turn else None,
        denoise=registry.get_noise_suppressor() if config.flow.voice_isolation == "near" else None,
        embedder=embedded_embedder() if config.guardrails and not echo else None,
    )


def llm_description(config: LLMConfig) -> str:
    """Where a PAL's replies come from, in words."""
    if config.base_url:
        return f"{config.base_url} ({config.model or 'no model name'})"
    return f"embedded model {registry.canonical_name('llm', config.model or None)}"


async def test_llm(config: LLMConfig, *, timeout_s: float = 60) -> AsyncIterator[str]:
    """Ask the PAL's model a short question and stream what happens, as text for a person:
    who is asked, the reply as it comes, and a last line saying whether it worked."""
    llm = None
    try:
        yield f"Asking {llm_description(config)} …\n"  # nothing is connected yet
        llm = await asyncio.to_thread(build_llm, config, timeout=30.0)
        got = False
        async with asyncio.timeout(timeout_s):
            async for delta in llm.stream(TEST_PROMPT, max_tokens=48, temperature=config.temperature):
                if delta.text:
                    got = True
                    yield delta.text
        yield "\n\n✓ The model answered." if got else "\n\n⚠ The endpoint answered with no text."
    except EngineError as exc:
        yield f"\n✗ {exc}"
    except TimeoutError:
        yield f"\n✗ No complete answer within {timeout_s:.0f} s."
    finally:
        if llm is not None:
            await llm.aclose()


async def preview_voice(config: PipelineConfig, text: str, *, timeout_s: float = 30) -> bytes:
    """``text`` spoken by the PAL's voice, in the conversation's language and speed: a WAV file.
    Raises EngineError when the engine fails or produces nothing."""
    tts = await asyncio.to_thread(build_tts, config.tts)
    voice = VoiceOptions(voice=config.tts.voice_id, language=config.tts_language, speed=config.tts.speed)
    text = strip_tags(text)  # emotion tags are never read out
    pcm: list[bytes] = []
    rate = tts.sample_rate
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in tts.synthesize(text, voice=voice):
                rate = chunk.sample_rate
                pcm.append(chunk.pcm.astype("<i2").tobytes())
    finally:
        if hasattr(tts, "aclose"):
            await tts.aclose()
    if not pcm:
        raise EngineError("the voice produced no audio", engine=getattr(tts, "name", "tts"))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(pcm))
    return buf.getvalue()


def engine_catalogue() -> dict[str, list[dict[str, Any]]]:
    """The engines of this installation, by kind: the valid choices of each layer's engine
    option (``GET /v2/engines``, the PAL editor)."""
    engines = dict(registry.available_engines())
    for kind, layer, name in (("perception", "perception", "perception_model"),
                              ("turn_detection", "conversational_flow", "turn_detection_model")):
        engines[kind] = [{"name": n} for n in layerspec.get(layer, name).choices]
    return engines


#: eSpeak NG voices offered by name (any eSpeak voice id works), with their language
ESPEAK_VOICES = (
    ("en-us", "English (US)", "en"), ("en-gb", "English (UK)", "en"),
    ("en-gb-x-rp", "English (UK, received pronunciation)", "en"), ("en-gb-scotland", "English (Scotland)", "en"),
    ("en-us+f3", "English (US), female variant", "en"), ("en+m3", "English (UK), male variant", "en"),
    ("es", "Spanish", "es"), ("es-419", "Spanish (Latin America)", "es"), ("fr", "French", "fr"),
    ("de", "German", "de"), ("it", "Italian", "it"), ("pt-br", "Portuguese (Brazil)", "pt"), ("nl", "Dutch", "nl"),
    ("pl", "Polish", "pl"), ("sv", "Swedish", "sv"), ("hi", "Hindi", "hi"), ("ja", "Japanese", "ja"),
    ("cmn", "Chinese (Mandarin)", "zh"),
)
#: how each installable Piper voice is described
PIPER_VOICE_NAMES = {"en_US-joe-medium": ("Joe, US English, natural male voice", "en")}


def voice_catalogue() -> list[dict[str, str]]:
    """The voices installed here, for ``GET /v2/voices`` and the PAL editor's voice list: eSpeak
    NG's (engine ``espeak-ng``), then each Piper voice whose package is installed (``piper``)."""
    voices = [{"voice_id": v, "name": name, "engine": "espeak-ng", "language": lang} for v, name, lang in ESPEAK_VOICES]
    for voice in registry.piper_voices():
        name, lang = PIPER_VOICE_NAMES.get(voice, (voice, "en"))
        voices.append({"voice_id": voice, "name": name, "engine": "piper", "language": lang})
    return voices
