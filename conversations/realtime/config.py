"""The frozen configuration of one conversation's pipeline, built from a PAL's layers.

``PipelineConfig.from_layers`` takes plain dicts (the PAL's ``layers`` JSON plus the
conversation's overrides) and gives the same immutable value to a test, a benchmark and a
live call, so the same PAL behaves the same everywhere. Unknown keys are kept in
``PipelineConfig.layers`` (read-only) for the parts of the product that use them
(perception, …); invalid values raise ``ValueError`` with the offending field.

What each level of the turn-taking patience, the interruptibility and idle engagement means (the
waits, thresholds and policies) is in levels.py.
"""
from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from . import layerspec as spec
from .guardrails import Guardrail
from .guardrails import from_snapshot as guardrail_rules
from .layerspec import SENSITIVITIES
from .levels import (IDLE_ENGAGEMENT, INTERRUPT_SENSITIVITY, INTERRUPTIBILITY, PATIENCE_WAITS,
                     PAUSE_SENSITIVITY_WAITS, IdlePolicy, InterruptPolicy, TurnWaits)
from .objectives import ObjectiveGraph
from .pronounce import Pronunciation

Level = Literal["low", "medium", "high"]
Sensitivity = Literal["superlow", "verylow", "low", "medium", "high", "auto"]
PipelineMode = Literal["full", "echo"]

PIPELINE_MODES: tuple[str, ...] = ("full", "echo")
#: conversational_flow.turn_detection_model's choices: the end-of-turn model plus the transcript, or pauses only
TURN_DETECTION_MODELS: tuple[str, ...] = spec.get("conversational_flow", "turn_detection_model").choices


#: the options whose levels these tables define: (layer, option) -> level -> behaviour. The PAL
#: editor describes each level from them (seconds, words), so its labels follow any change here.
LEVEL_TABLES: Mapping[tuple[str, str], Mapping[str, Any]] = types.MappingProxyType({
    ("conversational_flow", "turn_taking_patience"): PATIENCE_WAITS,
    ("conversational_flow", "replica_interruptibility"): INTERRUPTIBILITY,
    ("conversational_flow", "idle_engagement"): IDLE_ENGAGEMENT,
})


def patience_table() -> list[dict[str, Any]]:
    """The turn-taking table in seconds, for the UI (one row per level)."""
    def row(setting: str, level: str, v: TurnWaits) -> dict[str, Any]:
        return {"setting": setting, "level": level, "complete_s": v.complete_ms / 1000,
                "neutral_s": v.neutral_ms / 1000, "incomplete_s": v.incomplete_ms / 1000,
                "threshold": v.threshold}

    return ([row("turn_taking_patience", k, v) for k, v in PATIENCE_WAITS.items()]
            + [row("participant_pause_sensitivity", k, v) for k, v in PAUSE_SENSITIVITY_WAITS.items()])


def _frozen_map(value: Any, field_name: str) -> Mapping[str, Any]:
    if value is None:
        return types.MappingProxyType({})
    if not isinstance(value, Mapping):
        raise ValueError(f"{field_name} must be an object")
    return types.MappingProxyType(dict(value))


def _choice(value: Any, allowed: Sequence[str], field_name: str, default: str | None) -> str | None:
    if value is None or value == "":
        return default
    if not isinstance(value, str) or value.strip().lower() not in allowed:
        raise ValueError(f"{field_name} must be one of {', '.join(allowed)}")
    return value.strip().lower()


def _bool(value: Any, field_name: str, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"{field_name} must be true or false")


def _str(value: Any, field_name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{field_name} must be a string")
    return value


# ---------------------------------------------------------------------------- layers
@dataclass(frozen=True)
class FlowConfig:
    """conversational_flow (+ the legacy stt sensitivities), resolved."""

    turn_taking_patience: str = spec.default("conversational_flow", "turn_taking_patience")
    replica_interruptibility: str = spec.default("conversational_flow", "replica_interruptibility")
    pause_sensitivity: str = "auto"  # legacy; "auto" = follow turn_taking_patience
    interrupt_sensitivity: str = "auto"
    smart_turn_detection: bool = True
    #: one of TURN_DETECTION_MODELS
    turn_detection_model: str = spec.default("conversational_flow", "turn_detection_model")
    #: silence (ms) at which the pipeline starts transcribing (and, if speculative, thinking)
    speculative_pause_ms: int = 200
    #: answer only turns with this phrase ("": every turn); with sleep_phrase, stay awake until it (wake.py)
    wake_phrase: str = ""
    sleep_phrase: str = ""
    #: "off" or a level of IDLE_ENGAGEMENT
    idle_engagement: str = spec.default("conversational_flow", "idle_engagement")
    #: "near": noise suppression on the mic audio before VAD and STT (``engines.denoise``); "off"
    voice_isolation: str = spec.default("conversational_flow", "voice_isolation")

    @property
    def waits(self) -> TurnWaits:
        if self.pause_sensitivity != "auto":
            return PAUSE_SENSITIVITY_WAITS[self.pause_sensitivity]
        return PATIENCE_WAITS[self.turn_taking_patience]

    @property
    def smart_turn(self) -> bool:
        """Judge the end of a turn (model + transcript) rather than by pause length alone."""
        return self.smart_turn_detection and self.turn_detection_model != "vad"

    @property
    def idle_policy(self) -> IdlePolicy | None:
        """When the agent speaks up after a silence (None: it never does)."""
        return IDLE_ENGAGEMENT.get(self.idle_engagement)

    @property
    def interrupt_policy(self) -> InterruptPolicy:
        if self.interrupt_sensitivity != "auto":
            return INTERRUPT_SENSITIVITY[self.interrupt_sensitivity]
        return INTERRUPTIBILITY[self.replica_interruptibility]

    def with_sensitivity(self, *, pause: str | None = None, interrupt: str | None = None) -> FlowConfig:
        """``conversation.sensitivity``: a new value overriding the PAL's for this session."""
        return replace(
            self,
            pause_sensitivity=_choice(pause, SENSITIVITIES, "participant_pause_sensitivity",
                                      self.pause_sensitivity) or "auto",
            interrupt_sensitivity=_choice(interrupt, SENSITIVITIES,
                                          "participant_interrupt_sensitivity",
                                          self.interrupt_sensitivity) or "auto",
        )


@dataclass(frozen=True)
class STTConfig:
    stt_engine: str = ""
    hotwords: str = ""
    #: a cloud engine's key and endpoint (azure-stt)
    api_key: str = field(default="", repr=False)
    base_url: str = ""


@dataclass(frozen=True)
class LLMConfig:
    model: str = ""
    base_url: str = ""
    api_key: str = field(default="", repr=False)
    headers: Mapping[str, str] = field(default_factory=lambda: types.MappingProxyType({}), repr=False)
    extra_body: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))
    default_query: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))
    speculative_inference: bool = spec.default("llm", "speculative_inference")
    tools: tuple[Mapping[str, Any], ...] = ()
    max_tokens: int = spec.default("llm", "max_tokens")
    temperature: float = spec.default("llm", "temperature")

    def tool_schemas(self) -> list[dict[str, Any]] | None:
        return [dict(t) for t in self.tools] or None


@dataclass(frozen=True)
class TTSConfig:
    tts_engine: str = ""
    voice_id: str = ""  # voice_id, else external_voice_id
    api_key: str = field(default="", repr=False)
    tts_model_name: str = ""
    base_url: str = ""  # a remote engine's endpoint (default: the provider's)
    speed: float = spec.default("tts", "voice_settings.speed")
    voice_settings: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))
    #: emotion tags in the spoken text change the voice (``emotion.py``); off: they are removed
    tts_emotion_control: bool = spec.default("tts", "tts_emotion_control")
    #: the account's dictionary the voice applies; its rules are read when a call starts
    #: (``conversations.live.config``) into ``pronunciation`` (``pronounce.py``)
    pronunciation_dictionary_id: str = ""
    pronunciation: Pronunciation = Pronunciation()


@dataclass(frozen=True)
class PipelineConfig:
    system_prompt: str = ""
    context: str = ""
    conversational_context: str = ""
    custom_greeting: str = ""
    #: enable_dynamic_greeting: with no custom_greeting, the LLM writes the opening line (agent.py)
    dynamic_greeting: bool = False
    #: as given ("english", "es", "multilingual")
    language: str = "english"
    #: ISO 639-1 code, or None = detect (multilingual)
    language_code: str | None = "en"
    pipeline_mode: str = "full"
    flow: FlowConfig = FlowConfig()
    stt: STTConfig = STTConfig()
    llm: LLMConfig = LLMConfig()
    tts: TTSConfig = TTSConfig()
    #: every layer as given (read-only), for parts that read other keys (perception, …)
    layers: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}), repr=False)
    #: the PAL's objectives (objectives.py); None: none
    objectives: ObjectiveGraph | None = None
    #: the PAL's guardrails (guardrails.py)
    guardrails: tuple[Guardrail, ...] = ()

    @property
    def tts_language(self) -> str:
        """Language for the voice: the conversation's, English when it is "multilingual"."""
        return self.language_code or "en"

    @classmethod
    def from_layers(
        cls,
        system_prompt: str,
        context: str,
        layers: Mapping[str, Any] | None,
        *,
        conversational_context: str = "",
        custom_greeting: str = "",
        dynamic_greeting: bool = False,
        language: str = "english",
        pipeline_mode: str = "full",
        objectives: Mapping[str, Any] | None = None,
        guardrails: Sequence[Mapping[str, Any]] | None = None,
    ) -> PipelineConfig:
        """``objectives`` and ``guardrails`` as a conversation's PAL snapshot holds them."""
        layers = dict(layers or {})
        for key, value in layers.items():
            if value is not None and not isinstance(value, Mapping):
                raise ValueError(f"layers.{key} must be an object")
        flow_l = dict(layers.get("conversational_flow") or {})
        stt_l = dict(layers.get("stt") or {})
        llm_l = dict(layers.get("llm") or {})
        tts_l = dict(layers.get("tts") or {})

        mode = _choice(pipeline_mode, PIPELINE_MODES, "pipeline_mode", "full")
        if mode == "echo" and spec.full_only_set(layers):
            raise ValueError(f"{spec.full_only_set(layers)[0].dotted} needs pipeline_mode full "
                             "(echo mode makes no turns and has no LLM)")
        interruptibility = _option(flow_l, "conversational_flow", "replica_interruptibility")
        flow = FlowConfig(
            turn_taking_patience=_option(flow_l, "conversational_flow", "turn_taking_patience"),
            replica_interruptibility=interruptibility,
            pause_sensitivity=_option(stt_l, "stt", "participant_pause_sensitivity") or "auto",
            interrupt_sensitivity=_option(stt_l, "stt", "participant_interrupt_sensitivity") or "auto",
            smart_turn_detection=_bool(stt_l.get("smart_turn_detection",
                                                 flow_l.get("smart_turn_detection")),
                                       "smart_turn_detection", True),
            turn_detection_model=_option(flow_l, "conversational_flow", "turn_detection_model"),
            wake_phrase=(_option(flow_l, "conversational_flow", "wake_phrase") or "").strip(),
            sleep_phrase=(_option(flow_l, "conversational_flow", "sleep_phrase") or "").strip(),
            idle_engagement=_option(flow_l, "conversational_flow", "idle_engagement"),
            voice_isolation=_option(flow_l, "conversational_flow", "voice_isolation"),
        )
        # The newer conversational_flow fields win over the legacy stt ones when both are set.
        if flow_l.get("turn_taking_patience"):
            flow = replace(flow, pause_sensitivity="auto")
        if flow_l.get("replica_interruptibility") or flow_l.get("pal_interruptibility"):
            flow = replace(flow, interrupt_sensitivity="auto")

        stt = STTConfig(stt_engine=_str(stt_l.get("stt_engine"), "stt_engine"),
                        hotwords=_hotwords(stt_l.get("hotwords")),
                        api_key=_str(stt_l.get("api_key"), "stt.api_key"),
                        base_url=_str(stt_l.get("base_url"), "stt.base_url").rstrip("/"))

        tools = llm_l.get("tools") or ()
        if not isinstance(tools, (list, tuple)) or not all(isinstance(t, Mapping) for t in tools):
            raise ValueError("llm.tools must be a list of objects")
        llm = LLMConfig(
            model=_str(llm_l.get("model"), "llm.model"),
            base_url=_str(llm_l.get("base_url"), "llm.base_url").rstrip("/"),
            api_key=_str(llm_l.get("api_key"), "llm.api_key"),
            headers=_frozen_map(llm_l.get("headers"), "llm.headers"),
            extra_body=_frozen_map(llm_l.get("extra_body"), "llm.extra_body"),
            default_query=_frozen_map(llm_l.get("default_query"), "llm.default_query"),
            speculative_inference=_option(llm_l, "llm", "speculative_inference"),
            tools=tuple(types.MappingProxyType(dict(t)) for t in tools),
            max_tokens=int(_option(llm_l, "llm", "max_tokens")),
            temperature=_option(llm_l, "llm", "temperature"),
        )

        settings = _frozen_map(tts_l.get("voice_settings"), "tts.voice_settings")
        speed = _option(settings, "tts", "voice_settings.speed")
        tts = TTSConfig(
            tts_engine=_str(tts_l.get("tts_engine"), "tts.tts_engine"),
            voice_id=_str(tts_l.get("voice_id") or tts_l.get("external_voice_id"), "tts.voice_id"),
            api_key=_str(tts_l.get("api_key"), "tts.api_key"),
            tts_model_name=_str(tts_l.get("tts_model_name"), "tts.tts_model_name"),
            base_url=_str(tts_l.get("base_url"), "tts.base_url").rstrip("/"),
            speed=speed,
            voice_settings=settings,
            tts_emotion_control=_option(tts_l, "tts", "tts_emotion_control"),
            pronunciation_dictionary_id=_option(tts_l, "tts", "pronunciation_dictionary_id") or "",
        )
        frozen_layers = types.MappingProxyType(
            {k: types.MappingProxyType(dict(v or {})) for k, v in layers.items()})
        return cls(
            system_prompt=_str(system_prompt, "system_prompt"),
            context=_str(context, "context"),
            conversational_context=_str(conversational_context, "conversational_context"),
            custom_greeting=_str(custom_greeting, "custom_greeting"),
            dynamic_greeting=_bool(dynamic_greeting, "enable_dynamic_greeting", False),
            language=_str(language, "language") or "english",
            language_code=_language_code(language),
            pipeline_mode=mode or "full",
            flow=flow,
            stt=stt,
            llm=llm,
            tts=tts,
            layers=frozen_layers,
            objectives=ObjectiveGraph.from_snapshot(objectives),
            guardrails=guardrail_rules(guardrails),
        )


def _number(value: Any, field_name: str, default: float, low: float, high: float, *,
            integer: bool = False) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and value != int(value)):
        raise ValueError(f"{field_name} must be {'an integer' if integer else 'a number'}")
    if not low <= value <= high:
        raise ValueError(f"{field_name} must be between {low:g} and {high:g}")
    return float(value)


def _option(raw: Mapping[str, Any], layer: str, name: str) -> Any:
    """One option of a layer from its raw dict, checked against the layer spec: its default
    when missing, a choice given by another name (or its legacy option name) as ours."""
    opt = spec.get(layer, name)
    value = raw.get(opt.name)
    if value is None and opt.legacy_name:
        value = raw.get(opt.legacy_name)
    if value is None or value == "":
        return opt.default
    where = opt.dotted
    if opt.kind == "choice":
        value = opt.canonical(value.strip().lower() if isinstance(value, str) else value)
        return _choice(value, opt.choices, where, opt.default)
    if opt.kind == "bool":
        return _bool(value, where, opt.default)
    if opt.kind in ("float", "int"):
        number = _number(value, where, opt.default, opt.minimum, opt.maximum, integer=opt.kind == "int")
        return int(number) if opt.kind == "int" else number
    return _str(value, where)


def _hotwords(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return _str(value, "stt.hotwords")


def _language_code(language: str | None) -> str | None:
    from .engines.languages import language_code

    return language_code(language or "english")
