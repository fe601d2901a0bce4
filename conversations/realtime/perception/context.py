"""The visual context: one short line the LLM gets with each user turn.

Format (documented in the README; keep it short, it is sent on every turn)::

    [visual] <what is seen now>; changed: <changes since the last turn>; <query answers>

- *seen now*: ``user present`` or ``no one in view``, then what holds: ``looking at the
  screen`` | ``looking away`` | ``turned away``, ``2 people in view``, ``smiling``,
  ``eyes closed``, ``eyebrows raised``, ``mouth open``, ``dark lighting`` |
  ``very bright lighting``, ``moving`` | ``moving a lot``. Absent: ``no one in view (user
  left 12s ago)``.
- *changed* (only if something changed since the previous turn; newest last, at most
  four): ``left 9s ago``, ``returned 4s ago``, ``looked away 6s ago``, ``looked back 2s ago``,
  ``a second person appeared 3s ago``, ``the second person left 1s ago``, ``started
  smiling 2s ago``, ``lighting became dark 5s ago``, ...
- with a vision model, ``seen: <its one-line description of the camera image>`` after that.
- *answers* to the PAL's visual awareness queries, ``"<query>" <answer>`` separated by
  ``; `` (a vision model's answers, or what the embedded engine can tell).

Example: ``[visual] user present, looking at the screen, smiling; changed: returned 4s ago``.
An empty string means nothing has been analysed yet (no camera frames): nothing is added.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from .state import PerceptionChange, VisualState

PREFIX = "[visual]"
MAX_CHANGES = 4
#: camera frames older than this make the context say the picture is stale
STALE_MS = 6000.0

_CHANGE_TEXT = {
    "user_left": "left",
    "user_returned": "returned",
    "user_looked_away": "looked away",
    "user_looked_back": "looked back",
    "second_person_appeared": "a second person appeared",
    "second_person_left": "the second person left",
    "user_started_smiling": "started smiling",
    "user_stopped_smiling": "stopped smiling",
    "user_closed_eyes": "closed their eyes",
    "user_opened_eyes": "opened their eyes",
}


def ago(now_ms: float, t_ms: float) -> str:
    s = max(0.0, (now_ms - t_ms) / 1000.0)
    if s < 1.0:
        return "just now"
    if s < 90:
        return f"{s:.0f}s ago"
    return f"{s / 60:.0f}min ago"


def describe_now(state: VisualState, now_ms: float) -> str:
    """What is seen now, as a comma-separated phrase."""
    if state.present is None:
        return "nobody seen yet"
    if not state.present:
        if state.absent_since_ms is not None and state.last_seen_ms is not None:
            return f"no one in view (user left {ago(now_ms, state.absent_since_ms)})"
        return "no one in view"
    parts = ["user present"]
    parts.append({"looking": "looking at the screen", "looking_away": "looking away",
                  "turned_away": "turned away"}.get(state.attention, "attention unknown"))
    if state.people >= 2:
        parts.append(f"{state.people} people in view")
    if state.smiling:
        parts.append("smiling")
    if state.eyes_closed:
        parts.append("eyes closed")
    if state.brow_raised:
        parts.append("eyebrows raised")
    if state.mouth_open and not state.smiling:
        parts.append("mouth open")
    if state.lighting == "dark":
        parts.append("dark lighting")
    elif state.lighting == "bright":
        parts.append("very bright lighting")
    if state.motion == "moving":
        parts.append("moving")
    elif state.motion == "restless":
        parts.append("moving a lot")
    return ", ".join(parts)


def describe_change(change: PerceptionChange, now_ms: float) -> str:
    if change.kind == "lighting_changed":
        what = f"lighting became {change.details.get('lighting', 'different')}"
    else:
        what = _CHANGE_TEXT.get(change.kind, change.kind.replace("_", " "))
    return f"{what} {ago(now_ms, change.t_ms)}"


def format_visual_context(state: VisualState, changes: Sequence[PerceptionChange], now_ms: float, *,
                          answers: Iterable[tuple[str, str]] = (), scene: str = "",
                          stale_ms: float = STALE_MS) -> str:
    """The line for the LLM (see the module docstring for the format)."""
    if state.frames == 0 and not scene:
        return ""
    parts = []
    if state.frames:
        now = describe_now(state, now_ms)
        if now_ms - state.t_ms > stale_ms:
            now = f"camera image lost {ago(now_ms, state.t_ms)}; last seen: {now}"
        parts.append(now)
    if scene:
        parts.append(f"seen: {scene.rstrip('.')}")
    text = f"{PREFIX} " + "; ".join(parts)
    shown = [c for c in changes if c.kind in _CHANGE_TEXT or c.kind == "lighting_changed"][-MAX_CHANGES:]
    if shown:
        text += "; changed: " + ", ".join(describe_change(c, now_ms) for c in shown)
    answered = [f'"{q}" {a}' for q, a in answers if a]
    if answered:
        text += "; " + "; ".join(answered)
    return text
