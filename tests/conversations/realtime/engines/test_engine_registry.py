"""The engine registry: valid choices, load-once sharing, and clear errors."""
from __future__ import annotations

import threading

import pytest

from conversations.realtime.engines import registry
from conversations.realtime.engines.base import (
    EngineError,
    LanguageModel,
    SpeechToText,
    TextToSpeech,
    VoiceActivityDetector,
)
from conversations.realtime.engines.openai_llm import OpenAILLM


def test_available_engines_lists_what_exists_here():
    engines = registry.available_engines()
    assert set(engines) == {"vad", "stt", "llm", "tts"}
    names = {kind: [e["name"] for e in entries] for kind, entries in engines.items()}
    assert names["vad"] == ["silero"]
    assert names["stt"] == ["whisper-base", "whisper-tiny.en", "azure-stt"]  # embedded, then cloud
    tiny = engines["stt"][1]
    assert tiny["languages"] == ["en"] and tiny["default_for"] == ["en"]
    assert engines["stt"][2]["requires"] == ["api_key", "base_url"] and not engines["stt"][2]["embedded"]
    assert names["tts"] == ["espeak-ng", "piper", "openai-tts", "elevenlabs", "cartesia", "azure"]  # embedded, then remote
    assert names["llm"][:2] == ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"] and "openai" in names["llm"]
    for entries in engines.values():
        assert sum(1 for e in entries if e["default"]) == 1
        assert all(isinstance(e["embedded"], bool) and e["description"] for e in entries)
    openai = next(e for e in engines["llm"] if e["name"] == "openai")
    assert openai["requires"] == ["base_url", "model"]


def test_the_default_recogniser_depends_on_the_language():
    assert registry.canonical_name("stt", None, language="en") == "whisper-tiny.en"
    assert registry.canonical_name("stt", None, language="es") == "whisper-base"
    assert registry.canonical_name("stt", None, language=None) == "whisper-base"  # multilingual
    with pytest.raises(EngineError, match="hears only en"):
        registry.get_stt("whisper-tiny.en", language="es")


def test_names_and_aliases():
    assert registry.canonical_name("llm", None) == "qwen2.5-coder-0.5b"
    assert registry.canonical_name("llm", "qwen2.5-0.5b") == "qwen2.5-coder-0.5b"  # the old name
    assert registry.canonical_name("llm", "qwen2.5-1.5b") == "qwen2.5-coder-1.5b"
    assert registry.canonical_name("tts", "eSpeak") == "espeak-ng"
    assert registry.canonical_name("stt", "whisper") == "whisper-base"
    with pytest.raises(EngineError, match="unknown tts engine 'polly'; available here: espeak-ng, piper, openai-tts"):
        registry.get_tts("polly")
    assert registry.canonical_name("tts", "11labs") == "elevenlabs"
    with pytest.raises(EngineError, match="unknown stt engine"):
        registry.get_stt("deepgram")
    with pytest.raises(EngineError, match="unknown llm engine"):
        registry.get_llm("gpt-7")
    with pytest.raises(EngineError, match="base_url"):
        registry.get_llm("openai")


def test_remote_llm_is_a_new_object_per_session():
    a = registry.get_llm("openai", base_url="http://127.0.0.1:9/v1", model="m")
    b = registry.get_llm(base_url="http://127.0.0.1:9/v1/", model="m")
    c = registry.get_llm("some-remote-model", base_url="http://127.0.0.1:9/v1")
    assert isinstance(a, OpenAILLM) and isinstance(b, OpenAILLM) and a is not b
    assert b.base_url == "http://127.0.0.1:9/v1" and c.model == "some-remote-model"


@pytest.mark.slow
def test_embedded_engines_load_once_and_are_shared(model_paths):
    results: list[object] = []

    def grab() -> None:
        results.append(registry.get_stt())

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 4 and all(r is results[0] for r in results)
    assert isinstance(results[0], SpeechToText)
    assert registry.get_stt("whisper") is results[0]
    assert isinstance(registry.get_vad(), VoiceActivityDetector) and registry.get_vad() is registry.get_vad()
    assert isinstance(registry.get_tts(), TextToSpeech) and registry.get_tts("espeak") is registry.get_tts()
    llm = registry.get_llm()
    assert isinstance(llm, LanguageModel) and registry.get_llm("qwen2.5-0.5b") is llm
    assert ("stt", "whisper-base") in registry.loaded_engines()
