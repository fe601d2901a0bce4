"""Visual tools: functions the PAL declares (``visual_tools`` + ``visual_tool_prompt``) that
fire as ``conversation.perception_tool_call`` when their condition becomes true.

A call fires once per *onset*: when the condition goes from false to true. It fires again
only after the condition has been false for ``rearm_ms`` and at least ``cooldown_ms`` after
the last call, so a held condition (the user stays away) or a flickering one never floods
the client.

Embedded engine: a tool's condition is read from its name, its description and the
sentences of ``visual_tool_prompt`` that mention it, and mapped by words to one of the
conditions below (``CONDITIONS``, first match wins). A tool that maps to none is listed in
``unsupported`` and never fires (its condition needs a vision model). Negations ("is *not*
smiling") are not understood.

Vision model: each tool's condition text is asked about with the awareness queries in the
same request (see ``awareness.build_vision_prompt``); a "yes" is that frame's verdict.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .awareness import Condition
from .state import PerceptionChange, VisualState

#: condition false for this long before it can fire again
REARM_MS = 3000.0
#: at least this long between two calls of one tool
COOLDOWN_MS = 10_000.0


@dataclass(frozen=True)
class EmbeddedCondition:
    name: str
    pattern: re.Pattern[str]
    holds: Callable[[VisualState, Sequence[PerceptionChange]], bool]
    describe: str


def _p(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.I)


def _changed(kind: str) -> Callable[[VisualState, Sequence[PerceptionChange]], bool]:
    return lambda state, changes: any(c.kind == kind for c in changes)


CONDITIONS: tuple[EmbeddedCondition, ...] = (
    EmbeddedCondition("user_returned", _p(r"\breturn", r"come(s)? back", r"came back", r"back (in|into|to) (the )?(frame|view|camera)",
                                          r"reappear"),
                      _changed("user_returned"), "the user came back into view"),
    EmbeddedCondition("multiple_people", _p(r"\b(two|2|three|multiple|several|other|another|more than one|second|additional|extra)\s+"
                                            r"(people|persons?|faces?|individuals?|participants?|someone)",
                                            r"someone else", r"somebody else", r"anyone else", r"not alone"),
                      lambda s, c: bool(s.present) and s.people >= 2, "more than one person is in view"),
    EmbeddedCondition("looking_away", _p(r"look(s|ing|ed)? away", r"not looking", r"distract", r"turn(s|ed|ing)? away",
                                         r"look(s|ing)? (down|elsewhere|around)", r"los(e|es|ing) (focus|attention)",
                                         r"stop(s|ped)? paying attention", r"break(s|ing)? eye contact", r"inattentive"),
                      lambda s, c: bool(s.present) and s.attention in ("looking_away", "turned_away"),
                      "the user is looking away from the screen"),
    EmbeddedCondition("looking_at_screen", _p(r"look(s|ing|ed)? (at|into|toward|towards) (the )?(screen|camera|me)",
                                              r"eye contact", r"pay(s|ing)? attention", r"\battentive"),
                      lambda s, c: bool(s.present) and s.attention == "looking", "the user looks at the screen"),
    EmbeddedCondition("user_absent", _p(r"\bleav(e|es|ing)\b", r"\bleft\b", r"\babsent", r"walk(s|ed)? away", r"step(s|ped)? away",
                                        r"\bno ?one\b", r"nobody", r"not (in|present|visible)", r"out of (the )?(frame|view|picture)",
                                        r"disappear", r"away from (the )?(desk|camera|computer|screen)"),
                      lambda s, c: s.present is False, "no one is in view"),
    EmbeddedCondition("eyes_closed", _p(r"\beyes?\b.*\b(closed|shut)", r"fall(s|ing)? asleep", r"asleep", r"\bsleep",
                                        r"drows", r"\bdoz", r"nod(s|ding)? off"),
                      lambda s, c: bool(s.present) and s.eyes_closed, "the user's eyes have been closed for a while"),
    EmbeddedCondition("mouth_open", _p(r"yawn", r"mouth (wide )?open", r"opens? (their|his|her) mouth"),
                      lambda s, c: bool(s.present) and s.mouth_open, "the user's mouth is wide open"),
    EmbeddedCondition("smiling", _p(r"smil", r"laugh", r"\bgrin"),
                      lambda s, c: bool(s.present) and s.smiling, "the user is smiling"),
    EmbeddedCondition("eyebrows_raised", _p(r"rais(e|es|ed|ing) (their |his |her )?(eye)?brows", r"surprised"),
                      lambda s, c: bool(s.present) and s.brow_raised, "the user raised their eyebrows"),
    EmbeddedCondition("dark", _p(r"\bdark", r"poor(ly)? (lighting|lit)", r"low light", r"too dim", r"bad lighting",
                                 r"underexposed", r"lighting is (poor|bad)"),
                      lambda s, c: s.lighting == "dark", "the picture is dark"),
    EmbeddedCondition("bright", _p(r"overexposed", r"too bright", r"glare", r"washed out"),
                      lambda s, c: s.lighting == "bright", "the picture is over-exposed"),
    EmbeddedCondition("restless", _p(r"moving a lot", r"fidget", r"restless", r"moves? around", r"keeps? moving",
                                     r"walking around"),
                      lambda s, c: s.motion == "restless", "the user is moving a lot"),
)
_BY_NAME = {c.name: c for c in CONDITIONS}


@dataclass
class VisualTool:
    name: str
    description: str
    parameters: dict[str, Any]
    #: what the condition is, in words: description plus the prompt's sentences about it
    condition_text: str
    #: the embedded condition it maps to (None: needs a vision model)
    embedded: str | None = None


def _sentences_about(prompt: str, name: str) -> list[str]:
    if not prompt or not name:
        return []
    sentences = re.split(r"(?<=[.!?\n])\s+", prompt)
    readable = name.replace("_", " ").replace("-", " ").lower()
    return [s.strip() for s in sentences if name.lower() in s.lower() or readable in s.lower()]


def parse_tools(tools: Sequence[Any], prompt: str = "") -> list[VisualTool]:
    """PAL ``visual_tools`` (OpenAI function schemas) -> ``VisualTool`` s; bad entries are skipped
    (the API validated them already)."""
    out: list[VisualTool] = []
    for tool in tools or ():
        if not isinstance(tool, dict):
            continue
        fn = tool.get("function", tool)
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            continue
        name = fn["name"]
        description = str(fn.get("description") or "")
        params = fn.get("parameters") if isinstance(fn.get("parameters"), dict) else {"type": "object", "properties": {}}
        about = _sentences_about(prompt, name)
        condition = " ".join([description] + about).strip() or name.replace("_", " ")
        out.append(VisualTool(name=name, description=description, parameters=params, condition_text=condition,
                              embedded=classify_condition(f"{name.replace('_', ' ')}. {condition}")))
    return out


def classify_condition(text: str) -> str | None:
    for cond in CONDITIONS:
        if cond.pattern.search(text):
            return cond.name
    return None


@dataclass
class _Gate:
    active: bool = False
    false_since: float | None = None
    last_fired: float | None = None


@dataclass
class OnsetGate:
    """Fires once per onset of a condition (see the module docstring)."""

    rearm_ms: float = REARM_MS
    cooldown_ms: float = COOLDOWN_MS
    _gates: dict[str, _Gate] = field(default_factory=dict)

    def update(self, name: str, holds: bool, t_ms: float) -> bool:
        g = self._gates.setdefault(name, _Gate())
        if not holds:
            if g.active and g.false_since is None:
                g.false_since = t_ms
            if g.active and t_ms - (g.false_since or t_ms) >= self.rearm_ms:
                g.active, g.false_since = False, None
            return False
        g.false_since = None
        if g.active:
            return False
        g.active = True  # this onset is used up, fired or not
        if g.last_fired is not None and t_ms - g.last_fired < self.cooldown_ms:
            return False  # too soon after the last call: skip this onset (never fire it late)
        g.last_fired = t_ms
        return True


def build_arguments(tool: VisualTool, state: VisualState, *, reason: str,
                    given: dict[str, Any] | None = None) -> str:
    """The call's arguments as a JSON string: what a vision model gave, else the schema's
    properties filled from what was seen where the name says what they want."""
    props = tool.parameters.get("properties") if isinstance(tool.parameters, dict) else None
    args: dict[str, Any] = {}
    if isinstance(props, dict):
        for key, schema in props.items():
            kind = schema.get("type") if isinstance(schema, dict) else None
            lname = key.lower()
            if given and key in given:
                args[key] = given[key]
            elif any(w in lname for w in ("count", "people", "faces", "number")) and kind in ("integer", "number"):
                args[key] = state.people
            elif any(w in lname for w in ("reason", "description", "observation", "details", "summary", "what",
                                          "evidence", "condition")) and kind in ("string", None):
                args[key] = reason
            elif "present" in lname and kind == "boolean":
                args[key] = bool(state.present)
    if given:
        for key, value in given.items():
            args.setdefault(key, value)
    return json.dumps(args, ensure_ascii=False)


class ToolWatcher:
    """Decides when visual tools fire. ``embedded_update`` every analysed frame;
    ``vision_update`` with each vision-model verdict."""

    def __init__(self, tools: Sequence[Any], prompt: str = "", *, use_embedded: bool = True,
                 rearm_ms: float = REARM_MS, cooldown_ms: float = COOLDOWN_MS) -> None:
        self.tools = parse_tools(tools, prompt)
        self.prompt = prompt
        self.use_embedded = use_embedded
        self.gate = OnsetGate(rearm_ms=rearm_ms, cooldown_ms=cooldown_ms)
        self.fired: list[tuple[float, str]] = []

    @property
    def unsupported(self) -> list[str]:
        """Tools the embedded engine cannot evaluate."""
        return [t.name for t in self.tools if t.embedded is None]

    def vision_conditions(self) -> list[Condition]:
        return [Condition(t.name, t.condition_text) for t in self.tools]

    def embedded_update(self, state: VisualState, changes: Sequence[PerceptionChange],
                        t_ms: float) -> list[tuple[VisualTool, str]]:
        """(tool, arguments JSON) for each tool whose embedded condition just began."""
        out = []
        if not self.use_embedded:
            return out
        for tool in self.tools:
            if tool.embedded is None:
                continue
            cond = _BY_NAME[tool.embedded]
            if self.gate.update(tool.name, cond.holds(state, changes), t_ms):
                self.fired.append((t_ms, tool.name))
                out.append((tool, build_arguments(tool, state, reason=cond.describe)))
        return out

    def vision_update(self, verdicts: Sequence[dict[str, Any] | bool | None], state: VisualState,
                      t_ms: float, *, scene: str = "") -> list[tuple[VisualTool, str]]:
        """Same, from a vision model's per-tool verdicts (dict = holds, with its arguments).
        Tools the embedded engine handles keep being decided by it when ``use_embedded``."""
        out = []
        for tool, verdict in zip(self.tools, verdicts):
            if verdict is None or (self.use_embedded and tool.embedded is not None):
                continue
            holds = isinstance(verdict, dict)
            if self.gate.update(tool.name, holds, t_ms):
                self.fired.append((t_ms, tool.name))
                given = verdict if isinstance(verdict, dict) else None
                out.append((tool, build_arguments(tool, state, reason=scene or tool.condition_text, given=given)))
        return out
