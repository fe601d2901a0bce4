"""The process-wide engine registry: which engines exist here, and one loaded copy of each.

Embedded engines (models in this process) are loaded lazily, once per process, under a
lock, and shared by every session: ``get_vad()``, ``get_stt(name)``, ``get_llm(name)``,
``get_tts(name)``. Loading takes up to a second or two (and, the very first time, the
assembly of the model files), so call the getters from a worker thread or at start-up
(``preload()``), not on a busy event loop.

Remote engines are cheap per-session objects: ``get_llm("openai", base_url=..., ...)``
returns a new ``OpenAILLM`` each time; the session closes it (``await llm.aclose()``).

Remote TTS engines (``cloud_tts``: an OpenAI-compatible speech endpoint, ElevenLabs, Cartesia,
Azure) are per-session objects too: ``get_tts("elevenlabs", api_key=..., voice_id=...)``;
close them with ``await tts.aclose()``.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .base import (EngineError, LanguageModel, NoiseSuppressor, SpeechToText, TextToSpeech, TurnModel,
                   VoiceActivityDetector)
from . import cloud_tts, models, threads

logger = logging.getLogger(__name__)

DEFAULT_VAD = "silero"
DEFAULT_STT = "whisper-base"
TINY_EN_STT = "whisper-tiny.en"
AZURE_STT = "azure-stt"
#: cloud speech recognisers: what each cannot work without (checked when a PAL is saved)
CLOUD_STT_REQUIRES: dict[str, tuple[str, ...]] = {AZURE_STT: ("api_key", "base_url")}
#: the STT engine a PAL gets when it names none, by conversation language (measured:
#: README, bench_pipeline); every other language, and multilingual, gets DEFAULT_STT
DEFAULT_STT_BY_LANGUAGE = {"en": TINY_EN_STT}
DEFAULT_TURN = "smart-turn"
#: the embedded instruct models (models.GGUF_MODELS), described for /v2/engines
EMBEDDED_LLMS = {
    "qwen2.5-coder-0.5b": "Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF): fastest, answers simple questions less well",
    "qwen2.5-coder-1.5b": "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF): answers better, ~1.5x slower to its first token",
}
#: chosen by measurement (README: bench_answers and bench_pipeline); the box's LLM service serves it
DEFAULT_LLM = "qwen2.5-coder-0.5b"
DEFAULT_TTS = "espeak-ng"
PIPER_TTS = "piper"
REMOTE_LLM = "openai"

#: other spellings accepted by the getters (never listed as separate engines)
_ALIASES = {
    "stt": {"whisper": "whisper-base", "whisper_base": "whisper-base", "faster-whisper": "whisper-base",
            "whisper-tiny-en": "whisper-tiny.en", "tiny.en": "whisper-tiny.en", "azure": AZURE_STT},
    "llm": {"qwen": DEFAULT_LLM, "qwen2.5-0.5b": "qwen2.5-coder-0.5b",  # its name before December 2026
            "qwen2.5-coder-0.5b-instruct": "qwen2.5-coder-0.5b", "qwen2.5-1.5b": "qwen2.5-coder-1.5b",
            "qwen2.5-coder-1.5b-instruct": "qwen2.5-coder-1.5b", "gemma": "gemma-3-270m",
            "openai-compatible": "openai", "custom": "openai"},
    "tts": {"piper-tts": "piper", "espeak": "espeak-ng", "espeakng": "espeak-ng", "espeak_ng": "espeak-ng", "openai": "openai-tts",
            "eleven_labs": "elevenlabs", "11labs": "elevenlabs", "azure-tts": "azure"},
    "vad": {"silero-vad": "silero", "silero_vad": "silero"},
}

_settings: dict[str, Any] = {"llm_n_ctx": 4096, "llm_url": "", "llm_service_model": DEFAULT_LLM,
                             "stt_beam_size": 1}
#: engine thread counts (``threads.plan``; ``configure`` re-plans for the box's calls and overrides)
_threads: threads.ThreadPlan = threads.plan(live_calls=0)
_instances: dict[tuple[str, str], object] = {}
_locks: dict[tuple[str, str], threading.Lock] = {}
_registry_lock = threading.Lock()


def configure(*, model_dir: str | os.PathLike[str] | None = None, live_calls: int | None = None,
              llm_threads: int = 0, stt_threads: int = 0, llm_n_ctx: int | None = None, llm_url: str | None = None,
              stt_beam_size: int | None = None, llm_service_model: str | None = None) -> None:
    """Process settings for engines not loaded yet (the Django side calls this once).
    ``llm_url``: the box's LLM service (llama-server or vLLM) that serves the embedded model
    to every process; without it the model is loaded in this process. ``live_calls``: the
    calls this box is sized for, which decide the engines' threads (``threads.plan``);
    ``llm_threads`` / ``stt_threads`` override the plan when positive."""
    global _threads
    if live_calls is not None or llm_threads or stt_threads:
        _threads = threads.plan(live_calls=_threads.live_calls if live_calls is None else live_calls,
                                llm_generation=llm_threads, stt=stt_threads)
    if model_dir is not None:
        models.set_default_model_dir(model_dir)
    if llm_url is not None:
        _settings["llm_url"] = llm_url
    if llm_service_model:
        _settings["llm_service_model"] = canonical_name("llm", llm_service_model)
    for key, value in (("llm_n_ctx", llm_n_ctx), ("stt_beam_size", stt_beam_size)):
        if value is not None:
            _settings[key] = int(value)


def thread_plan() -> threads.ThreadPlan:
    """The engines' thread counts in this process."""
    return _threads


def service_model() -> str:
    """The embedded model the box's LLM service serves (``LLM_MODEL``, else the default)."""
    return _settings["llm_service_model"]


def canonical_name(kind: str, name: str | None, *, language: str | None = None) -> str:
    """The registry's name for ``name`` (aliases resolved; None = the kind's default, which
    for STT depends on the conversation's ``language``, an ISO code or None = detect)."""
    defaults = {"vad": DEFAULT_VAD, "stt": DEFAULT_STT_BY_LANGUAGE.get(language or "", DEFAULT_STT),
                "llm": _settings["llm_service_model"], "tts": DEFAULT_TTS}
    if not name:
        return defaults[kind]
    key = name.strip().lower()
    return _ALIASES.get(kind, {}).get(key, key)


# ---------------------------------------------------------------------------- listing
def available_engines() -> dict[str, list[dict[str, Any]]]:
    """The valid engine choices of each layer in this installation (for the REST API and
    the PAL validation). Cheap: loads nothing."""
    where = ("served to every call by this box's LLM service (llama.cpp server, continuous batching)"
             if _settings["llm_url"] else "in-process via llama.cpp")
    llm: list[dict[str, Any]] = [
        {"name": name, "embedded": True, "default": name == _settings["llm_service_model"],
         "description": f"{text}; " + (where if name == _settings["llm_service_model"] else "in-process via llama.cpp")
                        + "; streams, supports tools"}
        for name, text in EMBEDDED_LLMS.items()]
    if models.gemma_installed():
        llm.append({"name": "gemma-3-270m", "embedded": True, "default": False,
                    "description": "gemma-3-270m base model (not instruction-tuned): a fast fallback"})
    llm.append({"name": REMOTE_LLM, "embedded": False, "default": False,
                "description": "any OpenAI-compatible chat-completions endpoint (must stream)",
                "requires": ["base_url", "model"],
                "options": ["api_key", "headers", "extra_body", "default_query"]})
    return {
        "vad": [{"name": DEFAULT_VAD, "embedded": True, "default": True,
                 "description": "Silero VAD v6 (ONNX) on onnxruntime"}],
        "stt": [{"name": DEFAULT_STT, "embedded": True, "default": True,
                 "description": "Whisper base (CTranslate2 int8) via faster-whisper; 99 languages, "
                                "language detection, hotwords; the default for every language but English"},
                {"name": TINY_EN_STT, "embedded": True, "default": False, "default_for": ["en"],
                 "languages": ["en"],
                 "description": "Whisper tiny.en (CTranslate2) via faster-whisper; English only, about "
                                "twice as fast as base; the default for English"},
                {"name": AZURE_STT, "embedded": False, "default": False, "requires": list(CLOUD_STT_REQUIRES[AZURE_STT]),
                 "description": "Azure AI Speech recognition through Microsoft's Speech SDK (api_key, and base_url "
                                "https://<region>.stt.speech.microsoft.com or your Speech container); the "
                                "conversation's language picks the locale; word timings"}],
        "llm": llm,
        "tts": [{"name": DEFAULT_TTS, "embedded": True, "default": True,
                 "description": "eSpeak NG via its C library; 100+ languages, word and phoneme timings",
                 "options": ["voice_id", "voice_settings.speed"]},
                {"name": PIPER_TTS, "embedded": True, "default": False, "languages": ["en"],
                 "voices": list(piper_voices()),
                 "description": "Piper neural voice (VITS on onnxruntime): natural English, phoneme timings "
                                "for the face. en_US-joe-medium: voice data CC0, but fine-tuned from the lessac "
                                "voice, whose training corpus restricts commercial use: check before a "
                                "commercial deployment",
                 "options": ["voice_id", "voice_settings.speed"]}] + [
            {"name": name, "embedded": False, "default": False, "description": cloud_tts.DESCRIPTIONS[name],
             "requires": list(cloud_tts.REQUIRES[name]),
             "options": ["base_url", "voice_id", "tts_model_name", "voice_settings"]}
            for name in cloud_tts.ENGINES],
    }


def engine_names(kind: str) -> list[str]:
    return [e["name"] for e in available_engines().get(kind, [])]


# ---------------------------------------------------------------------------- loading
def _load_once(kind: str, name: str, factory: Callable[[], object]) -> object:
    key = (kind, name)
    inst = _instances.get(key)
    if inst is not None:
        return inst
    with _registry_lock:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:  # one loader per engine; other engines load in parallel
        inst = _instances.get(key)
        if inst is None:
            logger.info("loading %s engine %s", kind, name)
            inst = factory()
            _instances[key] = inst
        return inst


def _unknown(kind: str, name: str) -> EngineError:
    valid = ", ".join(engine_names(kind))
    return EngineError(f"unknown {kind} engine {name!r}; available here: {valid}", engine=name,
                       code="unknown_engine")


def get_vad(name: str | None = None) -> VoiceActivityDetector:
    name = canonical_name("vad", name)
    if name != DEFAULT_VAD:
        raise _unknown("vad", name)
    from .vad import SileroVAD

    return _load_once("vad", name, SileroVAD)  # type: ignore[return-value]


def get_noise_suppressor() -> NoiseSuppressor:
    """RNNoise, the noise suppression of ``voice_isolation: near`` (loaded once per process)."""
    from .denoise import RNNoise

    return _load_once("denoise", RNNoise.name, RNNoise)  # type: ignore[return-value]


def get_stt(name: str | None = None, *, language: str | None = None, api_key: str = "",
            base_url: str = "") -> SpeechToText:
    """The shared STT engine ``name`` (None: the default for ``language``, an ISO code), or a
    new cloud engine for this session (``api_key``, ``base_url``). An engine that does not hear
    ``language`` is refused with a message naming both."""
    name = canonical_name("stt", name, language=language)
    if name in CLOUD_STT_REQUIRES:
        missing = [f for f in CLOUD_STT_REQUIRES[name] if not {"api_key": api_key, "base_url": base_url}[f]]
        if missing:
            raise EngineError(f"the {name} STT engine needs {' and '.join(missing)}", engine=name, code="bad_config")
        from .azure_speech import AzureSTT

        return AzureSTT(api_key=api_key, base_url=base_url)
    from .stt import WhisperSTT

    if name == DEFAULT_STT:
        engine = _load_once("stt", name, lambda: WhisperSTT(
            cpu_threads=_threads.stt, beam_size=_settings["stt_beam_size"]))
    elif name == TINY_EN_STT:
        def load_tiny() -> WhisperSTT:
            try:
                path = models.tiny_en_model_dir()
            except models.ModelFileError as exc:
                raise EngineError(str(exc), engine=name) from exc
            return WhisperSTT(path, cpu_threads=_threads.stt, beam_size=_settings["stt_beam_size"],
                              compute_type="int8", name=name, languages=frozenset({"en"}))

        engine = _load_once("stt", name, load_tiny)
    else:
        raise _unknown("stt", name)
    langs = engine.languages  # type: ignore[attr-defined]
    if langs and language not in langs:
        raise EngineError(f"the {name} speech recogniser hears only {', '.join(sorted(langs))}; this "
                          f"conversation's language is {language or 'multilingual'} (choose {DEFAULT_STT})",
                          engine=name, code="bad_config")
    return engine  # type: ignore[return-value]


def get_turn_model(name: str | None = None) -> TurnModel:
    """The shared end-of-turn model (Smart Turn v3.2 on one onnxruntime thread)."""
    if (name or DEFAULT_TURN) != DEFAULT_TURN:
        raise EngineError(f"unknown end-of-turn model {name!r}; available here: {DEFAULT_TURN}",
                          engine=name or "", code="unknown_engine")
    from .turn import SmartTurnModel

    return _load_once("turn", DEFAULT_TURN, SmartTurnModel)  # type: ignore[return-value]


def get_tts(name: str | None = None, *, api_key: str = "", voice_id: str = "", model: str = "",
            base_url: str = "", settings: dict[str, Any] | None = None) -> TextToSpeech:
    """The shared embedded TTS, or a new remote engine for this session (``aclose()`` it)."""
    name = canonical_name("tts", name)
    if name in cloud_tts.ENGINES:
        missing = [f for f in cloud_tts.REQUIRES[name] if not {"api_key": api_key, "voice_id": voice_id}[f]]
        if missing:
            raise EngineError(f"the {name} TTS engine needs {' and '.join(missing)}", engine=name, code="bad_config")
        return cloud_tts.ENGINES[name](api_key=api_key, voice_id=voice_id, model=model, base_url=base_url,
                                       settings=settings)
    if name == PIPER_TTS:
        from .piper_tts import PiperTTS

        return _load_once("tts", name, lambda: PiperTTS(threads=_threads.tts))  # type: ignore[return-value]
    if name != DEFAULT_TTS:
        raise _unknown("tts", name)
    from .tts import EspeakTTS

    return _load_once("tts", name, EspeakTTS)  # type: ignore[return-value]


def piper_voices() -> tuple[str, ...]:
    """The Piper voices installed here (cheap: imports no model)."""
    from .piper_tts import VOICES

    return tuple(v for v, package in VOICES.items() if models._package_dir(package) is not None)


def get_llm(name: str | None = None, *, base_url: str | None = None, api_key: str | None = None,
            model: str | None = None, headers: dict[str, str] | None = None,
            extra_body: dict[str, Any] | None = None, default_query: dict[str, Any] | None = None,
            timeout: float = 30.0) -> LanguageModel:
    """The shared embedded LLM ``name``, or, with a ``base_url`` (or ``name="openai"``), a new
    OpenAI-compatible client for this session (close it with ``await llm.aclose()``)."""
    canonical = canonical_name("llm", name)
    if base_url or canonical == REMOTE_LLM:
        from .openai_llm import OpenAILLM

        if not base_url:
            raise EngineError("the openai LLM engine needs a base_url", engine=REMOTE_LLM, code="bad_config")
        # with a remote endpoint, ``name`` may be the remote model's name
        remote_model = model or (name if name and canonical != REMOTE_LLM else "")
        if not remote_model:
            raise EngineError("the openai LLM engine needs a model name", engine=REMOTE_LLM, code="bad_config")
        return OpenAILLM(base_url=base_url, model=remote_model, api_key=api_key, headers=headers,
                         extra_body=extra_body, default_query=default_query, timeout=timeout)
    from .llama_local import LlamaCppLLM
    from .openai_llm import ServiceLLM

    if canonical == _settings["llm_service_model"] and _settings["llm_url"]:
        # the box's shared service: a cheap client per session (close it with aclose())
        return ServiceLLM(base_url=_settings["llm_url"], name=canonical, timeout=timeout)
    if canonical in EMBEDDED_LLMS:
        # another embedded model than the service's: loaded once in this process
        def load() -> LlamaCppLLM:
            try:
                path = models.gguf_path(canonical)
            except models.ModelFileError as exc:
                raise EngineError(str(exc), engine=canonical) from exc
            return LlamaCppLLM(path, name=canonical, n_threads=_threads.llm_generation,
                               n_threads_batch=_threads.llm_prompt, n_ctx=_settings["llm_n_ctx"])

        return _load_once("llm", canonical, load)  # type: ignore[return-value]
    if canonical == "gemma-3-270m" and models.gemma_installed():
        def load_gemma() -> LlamaCppLLM:
            try:
                path = models.gemma_gguf_path()
            except models.ModelFileError as exc:
                raise EngineError(str(exc), engine=canonical) from exc
            return LlamaCppLLM(path, name=canonical, n_threads=_threads.llm_generation,
                               n_threads_batch=_threads.llm_prompt,
                               n_ctx=_settings["llm_n_ctx"])

        return _load_once("llm", canonical, load_gemma)  # type: ignore[return-value]
    raise _unknown("llm", canonical)


def preload(*, vad: bool = True, turn: bool = True,
            stt: Iterable[str] | None = (DEFAULT_STT, *DEFAULT_STT_BY_LANGUAGE.values()),
            llm: Iterable[str] | None = (DEFAULT_LLM,), tts: Iterable[str] | None = (DEFAULT_TTS,)) -> None:
    """Load engines now (at process start, in a thread) so the first call does not wait."""
    if vad:
        get_vad()
    if turn:
        get_turn_model()
    for name in stt or ():
        get_stt(name, language="en" if name in DEFAULT_STT_BY_LANGUAGE.values() else None)
    for name in tts or ():
        get_tts(name)
    for name in llm or ():
        if not _settings["llm_url"]:
            get_llm(name)


def shutdown() -> None:
    """Stop the engines' worker threads (registered with ``atexit``; safe to call twice)."""
    for (kind, _name), inst in list(_instances.items()):
        close = getattr(inst, "close", None)
        if kind == "llm" and callable(close):
            try:
                close()
            except Exception:  # noqa: BLE001 - best effort at exit
                logger.exception("closing the %s engine failed", _name)


atexit.register(shutdown)


def loaded_engines() -> list[tuple[str, str]]:
    """(kind, name) of the engines loaded in this process (for /healthz and tests)."""
    return sorted(_instances)
