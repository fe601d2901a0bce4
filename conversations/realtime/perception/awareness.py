"""Visual awareness queries: questions about what the camera shows, kept answered.

Embedded engine
    It has no language: a query is answered only if it asks about something the engine
    measures. ``classify_query`` maps a query to one of the signals below by its words
    (``SIGNALS``; first match wins, more specific signals first) and the answer is a short
    statement of that signal's state ("smiling" / "not smiling"), so the wording's polarity
    ("is the user smiling?" / "did they stop smiling?") never matters. Questions about
    objects, clothes, the room, emotions or anything else are *not answerable* by it:
    ``embedded_coverage`` lists them, with a note for the PAL Maker, and they are never
    answered (rather than guessed).

Vision model (``perception_model: vision-llm``)
    All queries (and the visual tools' conditions, see ``tools.py``) go to the model in one
    request about once a second, with the latest camera frame (and the screen share's, if
    any): ``build_vision_prompt`` / ``parse_vision_answer`` define that exchange.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .state import VisualState

EMBEDDED_NOTE = (
    "The embedded engine (mediapipe) can tell presence, attention (looking at the screen or away), "
    "how many people are in view, smiling, closed eyes and blink rate, an open mouth, raised eyebrows, "
    "lighting and motion. Other questions (objects, clothes, the room, emotions, what is shown) need "
    "perception_model vision-llm."
)

# Words that make a question about something the embedded engine cannot see, even if it
# also contains one of a signal's words ("is the user holding something up to the light?").
_UNSEEN = re.compile(
    r"\b(hold(s|ing)?|wear(s|ing)?|glasses|hat|phone|object|item|card|shirt|cloth|background|"
    r"screen ?shar|sharing|document|book|pet|dog|cat|colou?r|tattoo|beard|hair|age|gender|emotion|"
    r"confus|frustrat|angry|anger|sad|bored|interest|writing|reading|eating|drinking|what|describe|who)\w*",
    re.I)


@dataclass(frozen=True)
class Signal:
    """Something the embedded engine measures, the words that ask about it, and how to say it."""

    name: str
    pattern: re.Pattern[str]
    answer: Callable[[VisualState], str]


def _p(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.I)


def _presence(s: VisualState) -> str:
    if s.present is None:
        return "nothing seen yet"
    return "user present" if s.present else "no one in view"


def _attention(s: VisualState) -> str:
    if s.present is None:
        return "nothing seen yet"
    if not s.present:
        return "no one in view"
    return {"looking": "looking at the screen", "looking_away": "looking away",
            "turned_away": "turned away"}.get(s.attention, "unknown")


def _people(s: VisualState) -> str:
    if s.present is None:
        return "nothing seen yet"
    if not s.present:
        return "no one in view"
    return "1 person in view" if s.people <= 1 else f"{s.people} people in view"


def _face(text_yes: str, text_no: str, attr: str) -> Callable[[VisualState], str]:
    def answer(s: VisualState) -> str:
        if s.present is None:
            return "nothing seen yet"
        if not s.present or s.attention == "turned_away":
            return "face not visible"
        return text_yes if getattr(s, attr) else text_no
    return answer


def _eyes(s: VisualState) -> str:
    base = _face("eyes closed", "eyes open", "eyes_closed")(s)
    if base == "eyes open" and s.blink_rate_per_min is not None:
        base += f" (about {s.blink_rate_per_min:.0f} blinks/min)"
    return base


def _lighting(s: VisualState) -> str:
    return {"dark": "dark lighting", "bright": "very bright lighting", "ok": "lighting ok"}.get(s.lighting, "unknown")


def _motion(s: VisualState) -> str:
    return {"still": "keeping still", "moving": "moving", "restless": "moving a lot"}[s.motion]


SIGNALS: tuple[Signal, ...] = (
    Signal("people", _p(r"how many (people|persons|faces)", r"number of (people|persons|faces)",
                        r"\b(two|2|three|multiple|several|other|another|more than one|second|additional|extra)\s+"
                        r"(people|persons?|faces?|individuals?|participants?|adults?|someone)",
                        r"someone else", r"anyone else", r"somebody else", r"anybody else", r"\balone\b",
                        r"by (them|him|her)sel"), _people),
    Signal("attention", _p(r"look(s|ing|ed)? (at|to|toward|towards|into) (the )?(screen|camera|me|us|monitor)",
                           r"eye contact", r"attentive", r"pay(s|ing)? attention", r"distract", r"focus",
                           r"look(s|ing|ed)? away", r"turn(s|ed|ing)? away", r"look(s|ing)? (down|up|elsewhere|around)",
                           r"\bgaze", r"engaged"), _attention),
    Signal("eyes", _p(r"\beyes?\b.*\b(closed|shut|open)", r"asleep", r"\bsleep", r"drows", r"tired", r"\bdoz",
                      r"blink"), _eyes),
    Signal("smiling", _p(r"smil", r"laugh", r"\bgrin", r"happy", r"cheerful"),
           _face("smiling", "not smiling", "smiling")),
    Signal("mouth", _p(r"mouth", r"yawn"), _face("mouth open", "mouth closed", "mouth_open")),
    Signal("eyebrows", _p(r"brow", r"surpris"), _face("eyebrows raised", "eyebrows relaxed", "brow_raised")),
    Signal("lighting", _p(r"\blight", r"\bdark", r"bright", r"\blit\b", r"backlit", r"illuminat", r"exposure",
                          r"exposed"), _lighting),
    Signal("motion", _p(r"\bmov(e|es|ing|ement)", r"motion", r"fidget", r"restless", r"(sit|sitting|keep|keeps|"
                        r"keeping|stay|stays|staying|hold|holds|holding) still"), _motion),
    Signal("presence", _p(r"\b(present|presence|visible)\b", r"in (the )?(frame|view|picture|shot)",
                          r"(is|are) (the user|they|he|she|someone|anyone|anybody|somebody) (still )?(there|here)",
                          r"\bleft\b", r"\bleav(e|es|ing)", r"away from", r"\babsent", r"at (the|their|his|her) "
                          r"(desk|computer|screen)", r"anyone there", r"anybody there", r"empty"), _presence),
)
_BY_NAME = {s.name: s for s in SIGNALS}


def classify_query(query: str) -> str | None:
    """The name of the embedded signal that answers ``query``, or None."""
    if _UNSEEN.search(query):
        return None
    for signal in SIGNALS:
        if signal.pattern.search(query):
            return signal.name
    return None


def embedded_coverage(queries: Sequence[str]) -> dict[str, Any]:
    """Which queries the embedded engine answers (and from which signal) and which it
    cannot, with the note to show in the PAL Maker."""
    answerable, unanswerable = [], []
    for q in queries:
        name = classify_query(q)
        if name is None:
            unanswerable.append(q)
        else:
            answerable.append({"query": q, "signal": name})
    return {"answerable": answerable, "unanswerable": unanswerable, "note": EMBEDDED_NOTE}


class EmbeddedAwareness:
    """Answers the answerable queries from the tracker's state (cheap: every frame)."""

    def __init__(self, queries: Sequence[str]) -> None:
        self.queries = list(queries)
        self.mapping = {q: classify_query(q) for q in self.queries}

    @property
    def unanswerable(self) -> list[str]:
        return [q for q, name in self.mapping.items() if name is None]

    def answers(self, state: VisualState) -> list[tuple[str, str]]:
        out = []
        for q, name in self.mapping.items():
            if name is not None and state.frames:
                out.append((q, _BY_NAME[name].answer(state)))
        return out


# ---------------------------------------------------------------------------- vision model
VISION_SYSTEM = (
    "You are the eyes of a video-call assistant. You see frames from the user's camera (and "
    "possibly their shared screen). Answer only from what is visible; say 'unclear' when you "
    "cannot tell. Be brief."
)


@dataclass(frozen=True)
class Condition:
    """A visual tool's condition as the vision model is asked about it."""

    name: str
    text: str


def build_vision_prompt(queries: Sequence[str], conditions: Sequence[Condition] = (), *,
                        tool_prompt: str = "", describe: bool = True, n_images: int = 1,
                        screen: bool = False) -> str:
    """The text of one combined request. Answers come back one per line, tagged ``S:``
    (scene), ``Q<n>:`` (query n) and ``C<n>:`` (condition n, ``yes``/``no`` plus an optional
    JSON object of arguments)."""
    lines = [f"The image{'s are' if n_images > 1 else ' is'} the user's camera"
             + (" (oldest first)" if n_images > 1 else "")
             + (", and the last image is the user's shared screen" if screen else "") + "."]
    if describe:
        lines.append('First line: "S: " and what the camera shows, in at most 15 words.')
    if queries:
        lines.append('Then answer each question in a few words, one line each, as "Q1: <answer>".')
        lines += [f"Q{i}: {q}" for i, q in enumerate(queries, 1)]
    if conditions:
        lines.append('Then for each condition write "C1: yes" or "C1: no", one line each. After "yes" '
                     "you may add the tool's arguments as a JSON object on the same line.")
        if tool_prompt.strip():
            lines.append(f"Guidance: {tool_prompt.strip()}")
        lines += [f"C{i}: {c.name}: {c.text}" for i, c in enumerate(conditions, 1)]
    return "\n".join(lines)


_LINE = re.compile(r"^\s*[*\-#>\s]*\**\s*(S|Q\s*\d+|C\s*\d+)\s*\**\s*[:.)\-]\s*(.*)$", re.I)


@dataclass
class VisionAnswer:
    scene: str
    answers: list[str | None]
    #: per condition: None (no answer), False, or the arguments dict when it holds
    conditions: list[dict[str, Any] | bool | None]


def parse_vision_answer(text: str, n_queries: int, n_conditions: int) -> VisionAnswer:
    """Read the tagged lines of the model's answer (tolerant of markdown and spacing)."""
    scene = ""
    answers: list[str | None] = [None] * n_queries
    conds: list[dict[str, Any] | bool | None] = [None] * n_conditions
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        tag, value = m.group(1).upper().replace(" ", ""), m.group(2).strip().strip("*").strip()
        if tag == "S":
            scene = value
        elif tag[0] == "Q":
            i = int(tag[1:]) - 1
            if 0 <= i < n_queries and value:
                answers[i] = value
        elif tag[0] == "C":
            i = int(tag[1:]) - 1
            if not 0 <= i < n_conditions:
                continue
            verdict = value.lower()
            if verdict.startswith(("yes", "true")):
                args: dict[str, Any] = {}
                brace = value.find("{")
                if brace >= 0:
                    try:
                        parsed = json.loads(value[brace:value.rfind("}") + 1])
                        if isinstance(parsed, dict):
                            args = parsed
                    except ValueError:
                        pass
                conds[i] = args
            elif verdict.startswith(("no", "false")):
                conds[i] = False
    return VisionAnswer(scene=scene, answers=answers, conditions=conds)
