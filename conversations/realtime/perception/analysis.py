"""The end-of-call perception analysis (``perception_analysis_queries``) as text.

The text starts with a summary of what the embedded engine saw over the whole call (time
in view, attention, people, expressions, lighting, changes), then answers each query:

- embedded engine: a query about one of its signals (see ``awareness.SIGNALS``) is answered
  from the call's statistics ("smiling about 35% of the time in view"); any other is
  marked as not answerable by it;
- vision model: the queries, the summary, the awareness answers seen during the call and a
  few keyframes kept in memory (at most ``KEYFRAMES``, evenly over the call; never stored)
  go to the model in one request; if that fails, the embedded answers are used.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ..engines.base import EngineError
from .awareness import classify_query
from .state import PerceptionStats
from .vision import VisionLLM

logger = logging.getLogger(__name__)

KEYFRAMES = 4


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _duration(ms: float) -> str:
    s = int(round(ms / 1000))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def summarise(stats: PerceptionStats) -> str:
    """One paragraph about the whole call."""
    if stats.frames == 0 or stats.observed_ms <= 0:
        return "No camera video was analysed."
    c = stats.counts
    present = stats.share(stats.present_ms)
    parts = [f"Observed {_duration(stats.observed_ms)} of camera video ({stats.frames} frames analysed): "
             f"the user was in view {_pct(present)} of the time"]
    if stats.present_ms > 0:
        parts.append(f"looking at the screen {_pct(stats.share(stats.looking_ms, stats.present_ms))} of the time in view")
        parts.append(f"smiling {_pct(stats.share(stats.smiling_ms, stats.present_ms))}")
    if c.get("user_left"):
        parts.append(f"left the frame {c['user_left']} time(s)")
    if c.get("user_looked_away"):
        parts.append(f"looked away {c['user_looked_away']} time(s)")
    if stats.max_people >= 2:
        parts.append(f"up to {stats.max_people} people were in view ({_pct(stats.share(stats.multiple_people_ms))} "
                     "of the time)")
    else:
        parts.append("no second person was seen")
    if stats.eyes_closed_ms > 0:
        parts.append(f"eyes closed for {_duration(stats.eyes_closed_ms)}")
    if stats.dark_ms > 0.2 * stats.observed_ms:
        parts.append(f"the picture was dark {_pct(stats.share(stats.dark_ms))} of the time")
    elif stats.bright_ms > 0.2 * stats.observed_ms:
        parts.append(f"the picture was over-exposed {_pct(stats.share(stats.bright_ms))} of the time")
    else:
        parts.append("lighting was fine")
    return ", ".join(parts) + "."


def answer_embedded(query: str, stats: PerceptionStats) -> str:
    """A query answered from the call's statistics, or a clear 'not answerable'."""
    signal = classify_query(query)
    if signal is None:
        return ("Not answerable by the embedded perception engine (it measures presence, attention, people, "
                "expressions, lighting and motion; this needs perception_model vision-llm).")
    if stats.observed_ms <= 0:
        return "No camera video was analysed."
    in_view = stats.present_ms
    c = stats.counts
    if signal == "presence":
        left = c.get("user_left", 0)
        return f"In view {_pct(stats.share(in_view))} of the call; left the frame {left} time(s)."
    if signal == "attention":
        return (f"Looking at the screen {_pct(stats.share(stats.looking_ms, in_view))} of the time in view; "
                f"looked away {c.get('user_looked_away', 0)} time(s).")
    if signal == "people":
        if stats.max_people >= 2:
            return (f"Yes: up to {stats.max_people} people were in view, {_pct(stats.share(stats.multiple_people_ms))} "
                    f"of the call ({c.get('second_person_appeared', 0)} time(s) a second person appeared).")
        return "Only one person was seen." if stats.face_frames else "No face was seen."
    if signal == "smiling":
        return (f"Smiling {_pct(stats.share(stats.smiling_ms, in_view))} of the time in view "
                f"({c.get('user_started_smiling', 0)} smile(s) began during the call).")
    if signal == "eyes":
        if stats.eyes_closed_ms > 0:
            return f"Eyes closed for {_duration(stats.eyes_closed_ms)} in all ({c.get('user_closed_eyes', 0)} time(s))."
        return "The eyes were never closed for long."
    if signal == "lighting":
        dark, bright = stats.share(stats.dark_ms), stats.share(stats.bright_ms)
        if dark > 0.2:
            return f"The picture was dark {_pct(dark)} of the time."
        if bright > 0.2:
            return f"The picture was over-exposed {_pct(bright)} of the time."
        return "Lighting was fine."
    if signal == "motion":
        return f"Moving {_pct(stats.share(stats.moving_ms))} of the time."
    if signal in ("mouth", "eyebrows"):
        return "Only momentary: the embedded engine keeps no statistics of this over the call."
    return "No answer."


def embedded_analysis(queries: Sequence[str], stats: PerceptionStats) -> str:
    lines = [summarise(stats)]
    lines += [f"Q: {q}\nA: {answer_embedded(q, stats)}" for q in queries]
    return "\n".join(lines)


async def vision_analysis(vision: VisionLLM, queries: Sequence[str], stats: PerceptionStats,
                          keyframes: Sequence[np.ndarray], observations: Sequence[str] = ()) -> str:
    """Ask the vision model; falls back to the embedded answers if it fails."""
    summary = summarise(stats)
    if not queries:
        return summary
    notes = "\n".join(f"- {o}" for o in list(observations)[-20:])
    prompt = (
        "These images are moments from the user's camera during a video call (oldest first).\n"
        f"Measured over the whole call: {summary}\n"
        + (f"Observations made during the call:\n{notes}\n" if notes else "")
        + "Answer each question in one or two sentences, one line each, as \"Q1: <answer>\".\n"
        + "\n".join(f"Q{i}: {q}" for i, q in enumerate(queries, 1)))
    try:
        text = await vision.ask(prompt, list(keyframes)[-KEYFRAMES:], max_tokens=60 + 80 * len(queries))
    except EngineError as exc:
        logger.warning("vision model analysis failed: %s", exc)
        return embedded_analysis(queries, stats) + f"\n(The vision model could not be reached: {exc})"
    from .awareness import parse_vision_answer

    parsed = parse_vision_answer(text, len(queries), 0)
    lines = [summary]
    for q, a in zip(queries, parsed.answers):
        lines.append(f"Q: {q}\nA: {a if a else answer_embedded(q, stats)}")
    return "\n".join(lines)
