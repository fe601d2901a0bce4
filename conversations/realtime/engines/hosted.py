"""The hosted product's managed engine names, and the engine each one means here: declared once.

A client written for the hosted API names that product's managed models: ``layers.llm.model``
``"tavus-gpt-oss"``, ``layers.stt.stt_engine`` ``"tavus-auto"``, ``layers.tts.tts_engine``
``"cartesia"`` with no key of its own (the hosted product then speaks with its own account), and
the hosted names of some choices (``sparrow-1``, ``raven-0``: ``layerspec.Option.aliases``). None
of them exists here. Rather than refusing such a PAL, :func:`map_hosted_names` stores the closest
embedded engine in its place and returns one line per mapping, which the PAL's create and patch
responses give as ``warnings``; ``GET /v2/engines`` lists the table (:func:`table`).

No Django here: the realtime package and the REST layer both read it.
"""
from __future__ import annotations

import copy
import types
from collections.abc import Mapping
from typing import Any

from .. import layerspec
from .registry import DEFAULT_STT, DEFAULT_TTS, TINY_EN_STT

#: stands for "no engine named": the call uses this server's default (for STT, the default for the
#: conversation's language; for the LLM, the model this box's LLM service serves)
SERVER_DEFAULT = ""

#: the hosted LLMs (its docs' list, deprecated ones included) → an embedded model. The hosted
#: product's quick models map to the server's default (the fast 0.5B this box serves to every
#: call); its larger ones to the larger embedded model, which answers better and is slower.
HOSTED_LLMS: Mapping[str, str] = types.MappingProxyType({
    "tavus-gpt-oss": SERVER_DEFAULT, "tavus-gpt-4o-mini": SERVER_DEFAULT, "tavus-llama": SERVER_DEFAULT,
    "tavus-llama-4": SERVER_DEFAULT,
    "tavus-gpt-4o": "qwen2.5-coder-1.5b", "tavus-gpt-4.1": "qwen2.5-coder-1.5b", "tavus-gpt-5.2": "qwen2.5-coder-1.5b",
    "tavus-gemini-2.5-flash": "qwen2.5-coder-1.5b", "tavus-gemini-3-flash": "qwen2.5-coder-1.5b",
    "tavus-claude-haiku-4.5": "qwen2.5-coder-1.5b",
})
#: the hosted speech recognisers → an embedded one. "auto" and the low-latency English/European
#: one become the per-language default (what tavus-auto does); the broad multilingual ones Whisper
#: base; the English-only one the English-only Whisper.
HOSTED_STT: Mapping[str, str] = types.MappingProxyType({
    "tavus-auto": SERVER_DEFAULT, "tavus-parakeet": SERVER_DEFAULT, "tavus-whisper": DEFAULT_STT,
    "tavus-soniox": DEFAULT_STT, "tavus-advanced": DEFAULT_STT, "tavus-deepgram-medical": TINY_EN_STT,
})
#: TTS engines the hosted product runs with its own provider account when the PAL gives no
#: ``api_key``; with a key they are the real cloud engines here too (``cloud_tts``)
MANAGED_TTS: Mapping[str, str] = types.MappingProxyType({
    "cartesia": DEFAULT_TTS, "elevenlabs": DEFAULT_TTS, "azure": DEFAULT_TTS,
})
#: options of a managed TTS engine that mean nothing to the embedded one it becomes
_PROVIDER_ONLY_TTS = ("voice_id", "external_voice_id", "tts_model_name")


def _target(name: str) -> str:
    return name or "this server's default"


def map_hosted_names(layers: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``layers`` with every hosted managed name replaced by the engine it means here, and one
    warning per replacement. The input is not changed; anything that is not a mapping is returned
    as it is (the validation that follows names the problem)."""
    out: dict[str, Any] = copy.deepcopy(dict(layers))
    warnings: list[str] = []

    llm = out.get("llm")
    if isinstance(llm, dict) and isinstance(llm.get("model"), str) and not llm.get("base_url"):
        hosted = llm["model"].strip().lower()
        if hosted in HOSTED_LLMS:
            target = HOSTED_LLMS[hosted]
            if target:
                llm["model"] = target
            else:
                del llm["model"]
            warnings.append(f"layers.llm.model {hosted!r} is a model of the hosted product; "
                            f"this PAL uses the embedded model {_target(target)}")

    stt = out.get("stt")
    if isinstance(stt, dict) and isinstance(stt.get("stt_engine"), str):
        hosted = stt["stt_engine"].strip().lower()
        if hosted in HOSTED_STT:
            target = HOSTED_STT[hosted]
            if target:
                stt["stt_engine"] = target
            else:
                del stt["stt_engine"]
            warnings.append(f"layers.stt.stt_engine {hosted!r} is a speech recogniser of the hosted product; "
                            f"this PAL uses {target or 'the embedded default for the conversation language'}")

    tts = out.get("tts")
    if isinstance(tts, dict) and isinstance(tts.get("tts_engine"), str) and not tts.get("api_key"):
        hosted = tts["tts_engine"].strip().lower()
        if hosted in MANAGED_TTS:
            tts["tts_engine"] = MANAGED_TTS[hosted]
            dropped = [name for name in _PROVIDER_ONLY_TTS if tts.pop(name, None)]
            note = (f"; {', '.join('layers.tts.' + n for n in dropped)} named the provider's voice or model "
                    "and was dropped" if dropped else "")
            warnings.append(f"layers.tts.tts_engine {hosted!r} without an api_key is the hosted product's "
                            f"managed voice; this PAL speaks with the embedded {MANAGED_TTS[hosted]}{note} "
                            f"(send your own {hosted} api_key and voice to use {hosted} itself)")

    for opt in layerspec.OPTIONS:
        if not opt.aliases or opt.parent:
            continue
        layer = out.get(opt.layer)
        if not isinstance(layer, dict):
            continue
        for name in (opt.name, opt.legacy_name):
            value = layer.get(name) if name else None
            if isinstance(value, str) and value in opt.aliases:
                layer[name] = opt.aliases[value]
                warnings.append(f"layers.{opt.dotted} {value!r} is a model of the hosted product; "
                                f"this PAL uses {opt.aliases[value]}")
    return out, warnings


def table() -> dict[str, dict[str, str]]:
    """Every hosted name and what it means here, by layer option (``GET /v2/engines``)."""
    out: dict[str, dict[str, str]] = {
        "llm.model": {k: _target(v) for k, v in HOSTED_LLMS.items()},
        "stt.stt_engine": {k: v or "the embedded default for the conversation language" for k, v in HOSTED_STT.items()},
        "tts.tts_engine (no api_key)": dict(MANAGED_TTS),
    }
    for opt in layerspec.OPTIONS:
        if opt.aliases:
            out[opt.dotted] = dict(opt.aliases)
    return out
