"""The words of the PAL Maker's forms: the labels, help texts and choices that are not in the
layer spec.

The turn-taking choices (patience, interruptibility, idle engagement) are labelled with the
seconds that ``conversations.realtime.config`` actually uses; the engine and voice choices list
what is installed here. The fields themselves are in ``pals.editor_fields``, their sections in
``pals.editor_layout``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conversations.realtime.levels import IdlePolicy, InterruptPolicy, TurnWaits


def _s(ms: float) -> str:
    return f"{ms / 1000:g} s"


def patience_choices(waits: Mapping[str, TurnWaits]) -> list[tuple[str, str]]:
    """Short labels with the range of seconds; the full table is in ``patience_help()``."""
    words = {"low": "Low — snappy", "medium": "Medium — balanced", "high": "High — patient"}
    return [("", "Default (medium)")] + [
        (level, f"{words[level]} ({_s(w.complete_ms)}–{_s(w.incomplete_ms)})") for level, w in waits.items()]


def patience_help(waits: Mapping[str, TurnWaits]) -> str:
    rows = "; ".join(f"{level} {w.complete_ms / 1000:g} / {w.neutral_ms / 1000:g} / {w.incomplete_ms / 1000:g} s"
                     for level, w in waits.items())
    return ("How long the agent waits after you stop speaking before it answers — after a finished sentence / "
            f"otherwise / when you stop mid-thought: {rows}.")


def interruptibility_choices(policies: Mapping[str, InterruptPolicy]) -> list[tuple[str, str]]:
    words = {"low": "Low — hard to interrupt", "medium": "Medium", "high": "High — stops at once"}
    out = [("", "Default (medium)")]
    for level, p in policies.items():
        rule = _s(p.min_speech_ms) + (f" + {p.min_words} word{'s' if p.min_words > 1 else ''}" if p.min_words else "")
        out.append((level, f"{words[level]} ({rule})"))
    return out


def interruptibility_help(policies: Mapping[str, InterruptPolicy]) -> str:
    parts = []
    for level, p in policies.items():
        text = f"{level}: {_s(p.min_speech_ms)} of your speech"
        if p.min_words:
            text += f" and {p.min_words} real word{'s' if p.min_words > 1 else ''}"
            if p.force_ms:
                text += f" (or {_s(p.force_ms)} of speech alone)"
        parts.append(text)
    return ("How much of your speech over the agent stops it — " + "; ".join(parts)
            + ". Backchannels such as “mm-hm” never count as words.")


def idle_choices(policies: Mapping[str, IdlePolicy]) -> list[tuple[str, str]]:
    return [("", "Default (off)"), ("off", "Off — never speaks first")] + [
        (level, f"{level.capitalize()} (after {p.after_s:g} s, up to {p.max_nudges}×)") for level, p in policies.items()]


def idle_help(policies: Mapping[str, IdlePolicy]) -> str:
    rows = "; ".join(f"{level}: after {p.after_s:g} s, at most {p.max_nudges} time{'s' if p.max_nudges > 1 else ''}"
                     for level, p in policies.items())
    return ("Whether the agent speaks up when you stay silent, with a short line that fits the conversation — "
            f"{rows} until you speak again. Not while it waits for its wake phrase.")


#: how the editor words the levels of an option (config.LEVEL_TABLES), by what a level is
DESCRIBE_LEVELS = {
    TurnWaits: (patience_choices, patience_help),
    InterruptPolicy: (interruptibility_choices, interruptibility_help),
    IdlePolicy: (idle_choices, idle_help),
}

SENSITIVITY_LABELS = {
    "": "Not set (use conversational flow)", "superlow": "Super low", "verylow": "Very low", "low": "Low",
    "medium": "Medium", "high": "High", "auto": "Auto",
}
TRISTATE = [("", "Default"), ("true", "On"), ("false", "Off")]
PERCEPTION_LABELS = {
    "": "Default (embedded MediaPipe)",
    "mediapipe": "Embedded (MediaPipe, on this machine)",
    "vision-llm": "A vision model at an OpenAI-compatible endpoint",
    "off": "Off (the agent does not look at the camera)",
}
TURN_MODEL_LABELS = {
    "": "Default (smart turn)",
    "smart-turn": "Smart turn — a trained model hears whether you sound finished, and the words are checked",
    "vad": "Pause length only",
}


def voice_choices() -> list[tuple[str, str]]:
    """The editor's voice list: the voices installed here (``frontdoor.voice_catalogue``)."""
    from conversations.realtime.frontdoor import voice_catalogue

    return [(v["voice_id"], v["name"] + (f" (engine {v['engine']})" if v["engine"] != "espeak-ng" else ""))
            for v in voice_catalogue()]


LANGUAGE_CHOICES = [
    ("english", "English"), ("multilingual", "Detect automatically (multilingual)"), ("spanish", "Spanish"),
    ("french", "French"), ("german", "German"), ("italian", "Italian"), ("portuguese", "Portuguese"),
    ("dutch", "Dutch"), ("polish", "Polish"), ("swedish", "Swedish"), ("hindi", "Hindi"),
    ("japanese", "Japanese"), ("chinese", "Chinese"),
]


def _engines(kind: str) -> list[dict[str, Any]]:
    from conversations.realtime.engines.registry import available_engines

    return list(available_engines().get(kind, []))


def engine_choices(kind: str, *, embedded_only: bool = False) -> list[tuple[str, str]]:
    """The engines of ``kind`` (stt, llm, tts) installed here, the default one marked."""
    out = [("", "Default")]
    for e in _engines(kind):
        if embedded_only and not e.get("embedded", True):
            continue
        label = e["name"] + (" (default)" if e.get("default") else "")
        if e.get("description"):
            label += f" — {e['description']}"
        out.append((e["name"], label))
    return out
