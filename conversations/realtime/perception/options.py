"""The perception layer's options and sampling policy (Django-free).

- :class:`PerceptionConfig`: the PAL's ``layers.perception`` as the monitor reads it (hosted
  model names and legacy option names accepted, ``perception_model`` checked);
- :class:`SamplingPolicy`: how many frames a second are analysed, by who is speaking, and how
  often the vision model is asked.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MODEL_ALIASES = {"raven-0": "mediapipe", "raven-1": "mediapipe", "basic": "mediapipe", "embedded": "mediapipe"}
LEGACY_NAMES = {"ambient_awareness_queries": "visual_awareness_queries",
                "perception_tool_prompt": "visual_tool_prompt", "perception_tools": "visual_tools"}


@dataclass(frozen=True)
class PerceptionConfig:
    """The PAL's perception layer, normalised (legacy names and hosted model names accepted)."""

    model: str = "mediapipe"
    base_url: str = ""
    vision_model: str = ""
    api_key: str = ""
    awareness_queries: tuple[str, ...] = ()
    analysis_queries: tuple[str, ...] = ()
    tool_prompt: str = ""
    tools: tuple[dict[str, Any], ...] = ()
    pause_when_absent: bool = False
    absent_counts_as_left: bool = False

    @classmethod
    def from_layer(cls, layer: Mapping[str, Any] | None) -> PerceptionConfig:
        data = {LEGACY_NAMES.get(k, k): v for k, v in dict(layer or {}).items()}
        model = str(data.get("perception_model") or "mediapipe").strip().lower()
        model = MODEL_ALIASES.get(model, model)
        if model not in ("mediapipe", "vision-llm", "off"):
            raise ValueError(f"unknown perception_model {model!r}")

        def strings(key: str) -> tuple[str, ...]:
            return tuple(str(q).strip() for q in data.get(key) or () if str(q).strip())

        return cls(
            model=model, base_url=str(data.get("base_url") or ""), vision_model=str(data.get("model") or ""),
            api_key=str(data.get("api_key") or ""),
            awareness_queries=strings("visual_awareness_queries"),
            analysis_queries=strings("perception_analysis_queries"),
            tool_prompt=str(data.get("visual_tool_prompt") or ""),
            tools=tuple(t for t in data.get("visual_tools") or () if isinstance(t, dict)),
            pause_when_absent=bool(data.get("pause_when_absent", False)),
            absent_counts_as_left=bool(data.get("absent_counts_as_left", False)),
        )


@dataclass(frozen=True)
class SamplingPolicy:
    """Analysed frames per second, by what is happening in the conversation."""

    speaking_fps: float = 4.0
    listening_fps: float = 2.0
    idle_fps: float = 1.0
    #: how often the vision model is asked (it also waits for the previous answer)
    vision_interval_s: float = 1.0

    @property
    def max_fps(self) -> float:
        return max(self.speaking_fps, self.listening_fps, self.idle_fps)

    def interval_ms(self, *, user_speaking: bool, replica_speaking: bool) -> float:
        """The least time between two analysed frames while the conversation is like this."""
        fps = self.speaking_fps if user_speaking else self.listening_fps if replica_speaking else self.idle_fps
        return 1000.0 / fps if fps > 0 else float("inf")

