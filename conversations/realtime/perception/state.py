"""Per-frame signals smoothed over time into stable states and change events.

A single frame is noisy (a blink, a hand over the face, a detector miss); people are not.
Every state here is a *latch*: it flips only when the new value has held for a minimum
time and a minimum number of analysed frames, and the change is dated to the first frame
that showed it (so "left 4 s ago" counts from when they actually left, not from when we
were sure). Timings are in the frames' own milliseconds (``PerceptionSignals.t_ms``), so a
test can drive the tracker with any clock.

States and the changes they emit:

==============  =====================================  =========================================
state           values                                 changes
==============  =====================================  =========================================
presence        present / absent                       user_left, user_returned
attention       looking / looking_away / turned_away   user_looked_away, user_looked_back
people          count of faces                         second_person_appeared, second_person_left
smiling         bool                                   user_started_smiling, user_stopped_smiling
eyes_closed     bool (closed for ≥ 1.5 s, not blinks)  user_closed_eyes, user_opened_eyes
lighting        dark / ok / bright                     lighting_changed
mouth_open,     bool / still, moving, restless          (state only)
brow_raised,
motion
==============  =====================================  =========================================

Attention is only tracked while the user is present; when they come back it restarts
from what is seen then (no "looked back" on return).
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..engines.base import PerceptionSignals

logger = logging.getLogger(__name__)

#: typical length of a blink, used to estimate the blink rate from sampled frames
BLINK_S = 0.15
#: a frame stands for at most this long in the time-in-state statistics (gaps are not counted)
MAX_SAMPLE_WEIGHT_MS = 2000.0


@dataclass(frozen=True)
class PerceptionChange:
    """One change of state. ``t_ms`` is when it began (first frame that showed it),
    ``detected_ms`` when the tracker was sure."""

    kind: str
    t_ms: float
    detected_ms: float
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"change": self.kind, "t_ms": round(self.t_ms, 1), "detected_ms": round(self.detected_ms, 1),
                **self.details}


@dataclass(frozen=True)
class LatchTiming:
    """How long (ms) and over how many frames a new value must hold to be believed."""

    on_ms: float
    off_ms: float
    on_frames: int = 2
    off_frames: int = 2


class Latch:
    """A debounced value: ``update`` returns True when the value changed. ``is_on`` says
    which values take the ``on`` timing (default: truthy ones)."""

    def __init__(self, value: Any, timing: LatchTiming, t_ms: float = 0.0,
                 is_on: Callable[[Any], bool] = bool) -> None:
        self.value = value
        self.since_ms = t_ms
        self.timing = timing
        self.is_on = is_on
        self._candidate: Any = None
        self._candidate_since = 0.0
        self._candidate_frames = 0

    def _needs(self, new: Any) -> tuple[float, int]:
        # "on" = becoming truthy (present, smiling, looking away...), "off" = the reverse
        t = self.timing
        return (t.on_ms, t.on_frames) if self.is_on(new) else (t.off_ms, t.off_frames)

    def update(self, raw: Any, t_ms: float) -> bool:
        if raw == self.value:
            self._candidate, self._candidate_frames = None, 0
            return False
        if self._candidate != raw or self._candidate_frames == 0:
            self._candidate, self._candidate_since, self._candidate_frames = raw, t_ms, 0
        self._candidate_frames += 1
        need_ms, need_frames = self._needs(raw)
        if t_ms - self._candidate_since >= need_ms and self._candidate_frames >= need_frames:
            self.value, self.since_ms = raw, self._candidate_since
            self._candidate, self._candidate_frames = None, 0
            return True
        return False

    def reset(self, value: Any, t_ms: float) -> None:
        self.value, self.since_ms = value, t_ms
        self._candidate, self._candidate_frames = None, 0


@dataclass
class Thresholds:
    """Signal levels that count as a state (0..1 scores from the engine)."""

    smile_on: float = 0.55
    smile_off: float = 0.35
    mouth_open: float = 0.35
    brow_raised: float = 0.5
    dark: float = 0.22  # luma of the face (or scene without a face)
    bright: float = 0.88
    moving: float = 0.04  # mean absolute change (0..1) of a 64×48 grey thumbnail between frames
    restless: float = 0.12


@dataclass
class VisualState:
    """What the tracker believes now (a snapshot; JSON-able through ``as_dict``)."""

    t_ms: float = 0.0
    frames: int = 0
    present: bool | None = None  # None: nothing seen yet
    attention: str = "unknown"  # looking | looking_away | turned_away | unknown
    people: int = 0
    smiling: bool = False
    mouth_open: bool = False
    eyes_closed: bool = False
    brow_raised: bool = False
    lighting: str = "unknown"  # dark | ok | bright
    motion: str = "still"  # still | moving | restless
    blink_rate_per_min: float | None = None
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    #: when the user was last seen (frame time, ms), and since when they are away
    last_seen_ms: float | None = None
    absent_since_ms: float | None = None
    since_ms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PerceptionStats:
    """Time spent in each state (ms of analysed video) and counts of changes, for the
    end-of-call analysis."""

    observed_ms: float = 0.0
    present_ms: float = 0.0
    looking_ms: float = 0.0
    smiling_ms: float = 0.0
    eyes_closed_ms: float = 0.0
    multiple_people_ms: float = 0.0
    dark_ms: float = 0.0
    bright_ms: float = 0.0
    moving_ms: float = 0.0
    max_people: int = 0
    frames: int = 0
    face_frames: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def share(self, part_ms: float, of_ms: float | None = None) -> float:
        whole = self.observed_ms if of_ms is None else of_ms
        return part_ms / whole if whole > 0 else 0.0


class StateTracker:
    """Feed it ``PerceptionSignals`` in time order; it keeps the ``state`` and returns the
    changes each frame caused."""

    def __init__(self, *, thresholds: Thresholds | None = None, history: int = 200) -> None:
        self.thresholds = thresholds or Thresholds()
        self.state = VisualState()
        self.stats = PerceptionStats()
        self.changes: deque[PerceptionChange] = deque(maxlen=history)
        self._presence = Latch(None, LatchTiming(on_ms=300, off_ms=1500, on_frames=2, off_frames=2))
        # "on" = looking away (needs 0.8 s and 2 frames); looking back counts at once
        self._attention = Latch("looking", LatchTiming(on_ms=800, off_ms=0, on_frames=2, off_frames=1),
                                is_on=lambda v: v != "looking")
        self._away_since = 0.0
        self._two = Latch(False, LatchTiming(on_ms=800, off_ms=1500, on_frames=2, off_frames=2))
        self._smile = Latch(False, LatchTiming(on_ms=400, off_ms=600, on_frames=2, off_frames=2))
        self._eyes = Latch(False, LatchTiming(on_ms=1500, off_ms=0, on_frames=2, off_frames=1))
        self._mouth = Latch(False, LatchTiming(on_ms=300, off_ms=300, on_frames=1, off_frames=1))
        self._brow = Latch(False, LatchTiming(on_ms=300, off_ms=500, on_frames=1, off_frames=2))
        self._light = Latch("unknown", LatchTiming(on_ms=1500, off_ms=1500, on_frames=2, off_frames=2))
        self._motion_level = 0.0
        self._closed_window: deque[tuple[float, bool]] = deque()  # (t_ms, eyes closed) with a face
        self._last_t: float | None = None

    # ------------------------------------------------------------------ update
    def update(self, sig: PerceptionSignals) -> list[PerceptionChange]:
        t = sig.t_ms
        if self._last_t is not None and t < self._last_t:
            logger.debug("perception frame out of order (%.0f < %.0f): ignored", t, self._last_t)
            return []
        weight = 0.0 if self._last_t is None else min(t - self._last_t, MAX_SAMPLE_WEIGHT_MS)
        self._last_t = t
        th = self.thresholds
        st = self.state
        out: list[PerceptionChange] = []

        def change(kind: str, since: float, **details: Any) -> None:
            c = PerceptionChange(kind, since, t, details)
            out.append(c)
            self.changes.append(c)
            self.stats.counts[kind] = self.stats.counts.get(kind, 0) + 1

        # presence
        was_present = self._presence.value
        if self._presence.update(bool(sig.present), t):
            if self._presence.value:
                if was_present is not None:  # (first sight is not a return)
                    left = st.absent_since_ms if st.absent_since_ms is not None else self._presence.since_ms
                    away_s = (self._presence.since_ms - left) / 1000
                    change("user_returned", self._presence.since_ms, away_s=round(max(0.0, away_s), 1))
                st.absent_since_ms = None
                self._attention.reset(self._raw_attention(sig), t)
            else:
                st.absent_since_ms = self._presence.since_ms
                if was_present is not None:  # (nobody there from the start is not leaving)
                    change("user_left", self._presence.since_ms)
        present = bool(self._presence.value)
        if sig.present:
            st.last_seen_ms = t

        # attention (while present; a frame with nobody in it is presence's business)
        if present and (sig.face_count > 0 or sig.person_visible):
            before = self._attention.value
            if self._attention.update(self._raw_attention(sig), t):
                now = self._attention.value
                if now == "looking":
                    change("user_looked_back", self._attention.since_ms,
                           away_s=round((self._attention.since_ms - self._away_since) / 1000, 1))
                elif before == "looking":
                    self._away_since = self._attention.since_ms
                    change("user_looked_away", self._attention.since_ms,
                           how="turned_away" if now == "turned_away" else "looking_away")

        # people
        if self._two.update(sig.face_count >= 2, t):
            if self._two.value:
                change("second_person_appeared", self._two.since_ms, people=sig.face_count)
            else:
                change("second_person_left", self._two.since_ms)

        face = sig.face_count > 0
        # expressions: only judged on frames with a face
        if face:
            smile_raw = sig.smile >= (th.smile_off if self._smile.value else th.smile_on)
            if self._smile.update(smile_raw, t):
                change("user_started_smiling" if self._smile.value else "user_stopped_smiling",
                       self._smile.since_ms)
            if self._eyes.update(bool(sig.eyes_closed), t):
                change("user_closed_eyes" if self._eyes.value else "user_opened_eyes", self._eyes.since_ms)
            self._mouth.update(sig.mouth_open >= th.mouth_open, t)
            self._brow.update(sig.brow_raise >= th.brow_raised, t)
            self._closed_window.append((t, bool(sig.eyes_closed)))
            while self._closed_window and t - self._closed_window[0][0] > 60_000:
                self._closed_window.popleft()
        elif not present:
            for latch in (self._smile, self._eyes, self._mouth, self._brow):
                latch.reset(False, t)

        # lighting: the face's luma when there is one (a backlit face is "dark")
        luma = sig.face_brightness if face and sig.face_brightness > 0 else sig.brightness
        light_raw = "dark" if luma < th.dark else "bright" if luma > th.bright else "ok"
        if self._light.value == "unknown":
            self._light.reset(light_raw, t)
        elif self._light.update(light_raw, t):
            change("lighting_changed", self._light.since_ms, lighting=light_raw)

        # motion: smoothed over a few frames
        self._motion_level = 0.6 * self._motion_level + 0.4 * sig.motion
        motion = ("restless" if self._motion_level >= th.restless
                  else "moving" if self._motion_level >= th.moving else "still")

        # the snapshot
        st.t_ms = t
        st.frames += 1
        st.present = self._presence.value
        st.attention = self._attention.value if present else "unknown"
        st.people = (max(2, sig.face_count) if self._two.value else 1 if present else 0)
        st.smiling = bool(self._smile.value) and present
        st.mouth_open = bool(self._mouth.value) and present
        st.eyes_closed = bool(self._eyes.value) and present
        st.brow_raised = bool(self._brow.value) and present
        st.lighting = self._light.value
        st.motion = motion
        st.yaw_deg, st.pitch_deg = sig.yaw_deg, sig.pitch_deg
        st.blink_rate_per_min = self._blink_rate()
        st.since_ms = {
            "presence": self._presence.since_ms, "attention": self._attention.since_ms,
            "people": self._two.since_ms, "smiling": self._smile.since_ms, "lighting": self._light.since_ms,
        }
        self._account(weight, sig, present)
        return out

    @staticmethod
    def _raw_attention(sig: PerceptionSignals) -> str:
        if sig.face_count == 0:
            return "turned_away" if sig.person_visible else "looking_away"
        return "looking" if sig.attentive else "looking_away"

    def _blink_rate(self) -> float | None:
        """Blinks per minute, estimated from the share of sampled frames that caught the eyes
        shut (a frame catches a blink with probability rate × blink length). Needs ~20 face
        frames; long closures (eyes_closed state) are not blinks and are left out."""
        frames = [(t, c) for t, c in self._closed_window]
        if len(frames) < 20 or self._eyes.value:
            return None
        closed = sum(1 for _, c in frames if c)
        return round(60.0 * (closed / len(frames)) / BLINK_S, 1)

    def _account(self, weight: float, sig: PerceptionSignals, present: bool) -> None:
        s, st = self.stats, self.state
        s.frames += 1
        if sig.face_count:
            s.face_frames += 1
        s.max_people = max(s.max_people, sig.face_count)
        if weight <= 0:
            return
        s.observed_ms += weight
        if present:
            s.present_ms += weight
            if st.attention == "looking":
                s.looking_ms += weight
            if st.smiling:
                s.smiling_ms += weight
            if st.eyes_closed:
                s.eyes_closed_ms += weight
        if st.people >= 2:
            s.multiple_people_ms += weight
        if st.lighting == "dark":
            s.dark_ms += weight
        elif st.lighting == "bright":
            s.bright_ms += weight
        if st.motion != "still":
            s.moving_ms += weight

    # ------------------------------------------------------------------ queries
    def changes_since(self, t_ms: float) -> list[PerceptionChange]:
        """Changes detected after ``t_ms`` (frame time), oldest first."""
        return [c for c in self.changes if c.detected_ms > t_ms]
