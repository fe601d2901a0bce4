"""The PAL's layer options, each declared once.

Every option a PAL's ``layers`` may hold is one :class:`Option` here: its layer and name, type,
default, choices (and the hosted API's names for them), limits, help text, the editor's label,
whether the hosted API has it, and who consumes it. Everything else is derived from this table:

- the REST serializers and so the OpenAPI schema (``pals.layers``),
- the PAL editor's fields (``pals.editor_fields``), sections and "more options" folds
  (``pals.editor_layout``),
- the defaults and choices :class:`~conversations.realtime.config.PipelineConfig` applies,
- which options are secrets (write-only, masked on read).

An option no code consumes yet is declared with ``unsupported``: the API refuses any value that
would change a call (a 400 naming the option and saying why), so nothing is accepted and
silently ignored. ``neutral`` is the value that asks for nothing (what the product already does).

No Django here: the realtime package reads it too.
"""
from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: the layers, in the order the editor shows them, with the editor's prefix for field names
LAYERS: Mapping[str, str] = types.MappingProxyType({
    "conversational_flow": "cf", "stt": "stt", "llm": "llm", "tts": "tts", "perception": "pc", "transport": "tr",
})
LAYER_TITLES: Mapping[str, str] = types.MappingProxyType({
    "conversational_flow": "Conversational flow", "stt": "Speech to text", "llm": "Language model",
    "tts": "Text to speech", "perception": "Perception", "transport": "Transport",
})

LEVELS: tuple[str, ...] = ("low", "medium", "high")
#: conversational_flow.idle_engagement: level -> (seconds of silence before the agent speaks up,
#: how many times in a row at most until the person speaks again); levels.IDLE_ENGAGEMENT reads it
IDLE_LEVELS: Mapping[str, tuple[float, int]] = types.MappingProxyType({"patient": (15.0, 1), "eager": (7.0, 2)})
SENSITIVITIES: tuple[str, ...] = ("superlow", "verylow", "low", "medium", "high", "auto")


@dataclass(frozen=True)
class Option:
    layer: str
    name: str
    #: str, text (long str), choice, bool, float, int, url, secret, secret_map (a map of secret strings),
    #: str_map, json_map, str_list, tools, engine
    kind: str
    help: str
    default: Any = None
    choices: tuple[str, ...] = ()
    #: other names for a choice (the hosted API's), stored as the choice they mean
    aliases: Mapping[str, str] = field(default_factory=lambda: types.MappingProxyType({}))
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    #: the hosted CVI API has this option (False: an OpenCVI extension, marked "(ours)")
    hosted: bool = True
    #: an old name of the option, accepted and stored under ``name``
    legacy_name: str = ""
    #: the editor: its label; "" keeps the option out of the editor (API only)
    label: str = ""
    #: the editor folds it under the section's "more options"
    advanced: bool = False
    #: the editor's field name when it is not ``<prefix>_<name>``
    field: str = ""
    #: for a sub-key of a map option (tts.voice_settings.speed): the map's name
    parent: str = ""
    #: where a call reads it (documentation, and the test that every option is consumed)
    consumer: str = ""
    #: why no call uses it yet; any value other than ``neutral`` is refused
    unsupported: str = ""
    neutral: Any = None
    #: only works with pipeline_mode full (it needs turns and the LLM): a value other than the
    #: default is refused for an echo-mode PAL
    full_only: bool = False

    @property
    def path(self) -> tuple[str, ...]:
        return ("layers", self.layer, self.parent, self.name) if self.parent else ("layers", self.layer, self.name)

    @property
    def dotted(self) -> str:
        return ".".join(self.path[1:])

    @property
    def secret(self) -> bool:
        """Write-only: masked on every read (a map's values one by one)."""
        return self.kind in ("secret", "secret_map")

    @property
    def form_field(self) -> str:
        if self.field:
            return self.field
        prefix = LAYERS[self.layer]
        return self.name if self.name.startswith(prefix + "_") else f"{prefix}_{self.name}"

    @property
    def api_help(self) -> str:
        text = self.help
        if not self.hosted:
            text = "(ours) " + text
        if self.unsupported:
            text += f" Not supported here yet ({self.unsupported}): any value but {self.neutral!r} is refused."
        return text

    def canonical(self, value: Any) -> Any:
        """A choice given by one of its other names, as the choice it means."""
        if isinstance(value, str) and value in self.aliases:
            return self.aliases[value]
        return value


def _o(layer: str, name: str, kind: str, help: str, **kw: Any) -> Option:  # noqa: A002 - help is the word
    return Option(layer, name, kind, help, **kw)


_FLOW, _STT, _LLM, _TTS, _PC, _TR = "conversational_flow", "stt", "llm", "tts", "perception", "transport"

OPTIONS: tuple[Option, ...] = (
    # ------------------------------------------------------------------ conversational flow
    _o(_FLOW, "turn_taking_patience", "choice",
       "How long a pause ends the user's turn, and how sure the turn model must be that the user is done. "
       "low: 0.2 s after a complete thought, up to 0.9 s after an unfinished one, threshold 0.35 (snappy); "
       "medium: 0.3–1.6 s, 0.5; high: 0.6–2.4 s, 0.7 (patient).",
       default="medium", choices=LEVELS, label="Turn-taking patience", consumer="config.FlowConfig.waits"),
    _o(_FLOW, "replica_interruptibility", "choice",
       "How easily the user interrupts the agent: high: as soon as speech starts; medium: 0.4 s of speech and "
       "a word; low: 0.8 s and 3 words. Backchannels such as 'mm-hm' never interrupt. Alias pal_interruptibility.",
       default="medium", choices=LEVELS, legacy_name="pal_interruptibility", label="Interruptibility",
       consumer="config.FlowConfig.interrupt_policy"),
    _o(_FLOW, "turn_detection_model", "choice",
       "`smart-turn` (default: at each pause a trained end-of-turn model, Smart Turn v3.2, hears whether the "
       "user sounds finished, and the transcript is checked for an unfinished thought) or `vad` (pause length "
       "only). Hosted names sparrow-0/sparrow-1 mean `smart-turn`.",
       default="smart-turn", choices=("smart-turn", "vad"),
       aliases=types.MappingProxyType({"sparrow-0": "smart-turn", "sparrow-1": "smart-turn"}),
       label="Turn detection", advanced=True, consumer="config.FlowConfig.smart_turn"),
    _o(_FLOW, "idle_engagement", "choice",
       "Whether the agent speaks up when the person stays silent (says nothing while the agent is quiet): "
       + "; ".join(f"`{level}` after {after:g} s, at most {'once' if most == 1 else f'{most} times in a row'}"
                   for level, (after, most) in IDLE_LEVELS.items())
       + " until the person speaks again. The agent's LLM writes a short line that fits the conversation (it is told how long the person has "
       "been quiet). `off` (default): never. Not while the agent is asleep (wake_phrase with sleep_phrase). "
       "Full pipeline mode only.",
       default="off", choices=("off", *IDLE_LEVELS), label="Idle engagement", full_only=True,
       consumer="config.FlowConfig.idle_policy"),
    _o(_FLOW, "voice_isolation", "choice",
       "`near`: the microphone audio goes through noise suppression (RNNoise, a recurrent network made for "
       "speech) before voice detection and speech to text, so steady background noise (fans, traffic, "
       "keyboards, a crowd's hum) neither starts a turn nor garbles the transcript; the nearest speaker's "
       "voice is kept. `off` (default): the audio is used as it arrives. Costs about 5% of one CPU core per "
       "call and delays the audio by 10-20 ms.",
       default="off", choices=("near", "off"), label="Voice isolation", advanced=True,
       consumer="config.FlowConfig.voice_isolation"),
    _o(_FLOW, "wake_phrase", "str",
       "If set (e.g. `Hey Ana`), the agent answers only turns that contain this phrase; with `sleep_phrase`, "
       "it stays awake after hearing it and answers every turn until it hears the sleep phrase. The match "
       "ignores case and punctuation and forgives small transcription slips. Turns it does not answer are "
       "still transcribed (they are in the transcript), get no reply and never interrupt the agent. Emits "
       "system.wake_phrase_detected when the phrase wakes it. Full pipeline mode only.",
       max_length=100, label="Wake phrase", advanced=True, full_only=True, consumer="config.FlowConfig.wake_phrase"),
    _o(_FLOW, "sleep_phrase", "str",
       "With `wake_phrase`: the phrase that sends the agent back to sleep (it does not answer that turn, and "
       "emits system.sleep_phrase_detected); it then waits for the wake phrase again.",
       max_length=100, label="Sleep phrase", advanced=True, full_only=True,
       consumer="config.FlowConfig.sleep_phrase"),
    # ------------------------------------------------------------------ speech to text
    _o(_STT, "stt_engine", "engine", "Speech-to-text engine (see GET /v2/engines).",
       label="Speech-to-text engine", consumer="frontdoor.build_engines (registry.get_stt)"),
    _o(_STT, "hotwords", "str", "Words and names to favour, as a hint string.", max_length=1000,
       label="Hotwords", consumer="config.STTConfig.hotwords"),
    _o(_STT, "api_key", "secret", "Key of a cloud speech-to-text engine (azure-stt).", max_length=500,
       hosted=False, label="Provider API key", advanced=True, consumer="frontdoor.build_engines"),
    _o(_STT, "base_url", "url", "Endpoint of a cloud speech-to-text engine: for azure-stt "
       "https://<region>.stt.speech.microsoft.com, a proxy or the Speech container (http(s):// or ws(s)://).",
       max_length=2000, hosted=False, label="Speech-to-text endpoint", advanced=True,
       consumer="frontdoor.build_engines"),
    _o(_STT, "participant_pause_sensitivity", "choice",
       "Legacy: how quickly a pause ends the turn (high = quick). Overrides turn_taking_patience.",
       choices=SENSITIVITIES, label="Pause sensitivity (legacy)", advanced=True, field="stt_pause_sensitivity",
       consumer="config.FlowConfig.waits"),
    _o(_STT, "participant_interrupt_sensitivity", "choice",
       "Legacy: how easily speech interrupts the agent (high = easily).",
       choices=SENSITIVITIES, label="Interrupt sensitivity (legacy)", advanced=True,
       field="stt_interrupt_sensitivity", consumer="config.FlowConfig.interrupt_policy"),
    _o(_STT, "smart_turn_detection", "bool", "Legacy switch for the complete-thought check.",
       label="Smart turn detection (legacy)", advanced=True, consumer="config.FlowConfig.smart_turn"),
    # ------------------------------------------------------------------ language model
    _o(_LLM, "model", "str", "An embedded model (see GET /v2/engines), or with `base_url` the model name of "
       "that endpoint.", max_length=200, consumer="frontdoor.build_engines (registry.get_llm)"),
    _o(_LLM, "base_url", "url", "OpenAI-compatible endpoint without /chat/completions (e.g. "
       "https://api.openai.com/v1); must stream.", max_length=2000, label="Base URL",
       consumer="frontdoor.build_engines"),
    _o(_LLM, "api_key", "secret", "Key for `base_url` (never shown again in full).", max_length=500,
       label="API key", consumer="frontdoor.build_engines"),
    _o(_LLM, "headers", "secret_map", "Extra HTTP headers sent to `base_url`. Write-only like api_key (they "
       "often carry credentials): each value is masked when read; a masked value sent back keeps the stored one.",
       label="Extra headers (JSON object)", advanced=True, consumer="frontdoor.build_engines"),
    _o(_LLM, "extra_body", "json_map", "Extra JSON fields merged into each request body.",
       label="Extra body (JSON object)", advanced=True, consumer="frontdoor.build_engines"),
    _o(_LLM, "default_query", "str_map", "Query parameters added to each request.",
       label="Query parameters (JSON object)", advanced=True, consumer="frontdoor.build_engines"),
    _o(_LLM, "tools", "tools", "OpenAI function schemas; calls are sent to the client as conversation.tool_call.",
       maximum=64, label="Tools (JSON array of OpenAI function schemas)", consumer="config.LLMConfig.tools"),
    _o(_LLM, "temperature", "float", "Sampling temperature.", default=0.7, minimum=0.0, maximum=2.0, hosted=False,
       label="Temperature", advanced=True, consumer="config.LLMConfig.temperature"),
    _o(_LLM, "max_tokens", "int", "Longest reply in tokens.", default=160, minimum=16, maximum=4096, hosted=False,
       label="Longest reply (tokens)", advanced=True, consumer="config.LLMConfig.max_tokens"),
    _o(_LLM, "speculative_inference", "bool", "Start thinking at a short pause, before the turn is certainly "
       "over (default true).", default=True, label="Speculative inference", advanced=True,
       consumer="config.LLMConfig.speculative_inference"),
    # ------------------------------------------------------------------ text to speech
    _o(_TTS, "tts_engine", "engine", "Text-to-speech engine (see GET /v2/engines).",
       label="Text-to-speech engine", consumer="frontdoor.build_engines (registry.get_tts)"),
    _o(_TTS, "voice_id", "str", "Voice of the engine, e.g. `en-us`, `en-gb+f3` or `es` for eSpeak NG, "
       "`en_US-joe-medium` for piper, a provider's voice for a cloud engine.", max_length=200, label="Voice",
       consumer="config.TTSConfig.voice_id"),
    _o(_TTS, "speed", "float", "Speaking rate: 1 is the engine's normal rate; 0.5 to 2.0.", default=1.0,
       minimum=0.5, maximum=2.0, parent="voice_settings", label="Speed", field="tts_speed",
       consumer="config.TTSConfig.speed"),
    _o(_TTS, "external_voice_id", "str", "Voice id at a cloud TTS provider (used when voice_id is empty).",
       max_length=200, label="External voice id", advanced=True, consumer="config.TTSConfig.voice_id"),
    _o(_TTS, "tts_model_name", "str", "Model of a cloud TTS provider.", max_length=200, label="Provider model",
       advanced=True, consumer="frontdoor.build_engines"),
    _o(_TTS, "api_key", "secret", "Key of a cloud TTS provider.", max_length=500, label="Provider API key",
       advanced=True, consumer="frontdoor.build_engines"),
    _o(_TTS, "base_url", "url", "Endpoint of a remote TTS engine: your own OpenAI-compatible speech server for "
       "`openai-tts` (e.g. http://gpu-box:8880/v1), or another region/proxy of a cloud provider.",
       max_length=2000, hosted=False, label="Speech endpoint", advanced=True, consumer="frontdoor.build_engines"),
    _o(_TTS, "region", "str", "Azure AI Speech only: the region of your Speech resource.", max_length=50,
       parent="voice_settings", hosted=False, label="Azure region", advanced=True, field="tts_region",
       consumer="engines.azure_speech.AzureTTS"),
    _o(_TTS, "voice_settings", "json_map", "`speed` (0.5–2.0, 1 = normal), `region` for azure, and the provider's "
       "own settings for elevenlabs (stability, similarity_boost, style…), sent as they are.",
       consumer="config.TTSConfig.voice_settings"),
    _o(_TTS, "tts_emotion_control", "bool",
       "Emotion tags in what the agent says, such as `<emotion value=\"happy\"/>` (the tag format of the "
       "hosted default voice), change the voice from there on: pitch, rate, intonation range and loudness for "
       "eSpeak NG and Piper, a speaking style plus prosody for Azure, Cartesia's own emotion control (sonic-3 "
       "models), the rate for the other cloud voices. When true the LLM is told it may write these tags, and "
       "they work in conversation.echo text too. Tags are never spoken and never appear in captions or the "
       "transcript; when false they are removed and ignored. Default false here (the hosted default is true): "
       "the tags cost the small embedded model prompt room.",
       default=False, label="Emotion control", advanced=True, consumer="config.TTSConfig.tts_emotion_control"),
    _o(_TTS, "pronunciation_dictionary_id", "str", "A pronunciation dictionary of the account "
       "(/v2/pronunciation-dictionaries), read when a call starts: alias rules replace the matching words "
       "for the voice, IPA rules give it their phonemes (espeak-ng, piper and azure; another engine speaks "
       "those words as written and the PAL's response carries a warning). The transcript keeps the "
       "written words.", max_length=32, label="Pronunciation dictionary id", advanced=True,
       consumer="config.TTSConfig.pronunciation_dictionary_id"),
    # ------------------------------------------------------------------ perception
    _o(_PC, "perception_model", "choice", "Perception engine: `mediapipe` (embedded, CPU: presence, attention, "
       "expression, lighting, motion), `vision-llm` (an OpenAI-compatible vision model at `base_url`), or `off`. "
       "Hosted names raven-0/raven-1/basic mean `mediapipe`.",
       default="mediapipe", choices=("mediapipe", "vision-llm", "off"),
       aliases=types.MappingProxyType({"raven-0": "mediapipe", "raven-1": "mediapipe", "basic": "mediapipe"}),
       label="Perception", consumer="perception.options"),
    _o(_PC, "visual_awareness_queries", "str_list", "Questions about what the camera shows, re-evaluated about once "
       "a second; the answers are given to the LLM. Legacy name: ambient_awareness_queries.",
       maximum=20, max_length=500, legacy_name="ambient_awareness_queries",
       label="Visual awareness questions (one per line)", consumer="perception.options"),
    _o(_PC, "perception_analysis_queries", "str_list", "Questions answered once when the call ends "
       "(application.perception_analysis).", maximum=20, max_length=500,
       label="End-of-call questions (one per line)", consumer="perception.options"),
    _o(_PC, "visual_tool_prompt", "text", "Instructions for when to call the visual tools (legacy "
       "perception_tool_prompt).", legacy_name="perception_tool_prompt", label="Visual tool prompt",
       advanced=True, consumer="perception.options"),
    _o(_PC, "visual_tools", "tools", "OpenAI function schemas fired as conversation.perception_tool_call when "
       "their condition becomes true (legacy perception_tools).", maximum=20, legacy_name="perception_tools",
       label="Visual tools (JSON array of OpenAI function schemas)", advanced=True, consumer="perception.options"),
    _o(_PC, "pause_when_absent", "bool", "Pause a reply when the user leaves the frame and greet them on return.",
       default=False, hosted=False, label="Pause when the person leaves the frame", consumer="session (perception policy)"),
    _o(_PC, "absent_counts_as_left", "bool", "participant_left_timeout also counts time with no face seen.",
       default=False, hosted=False, label="Absence counts as leaving", consumer="session (perception policy)"),
    _o(_PC, "base_url", "url", "OpenAI-compatible endpoint of a vision model, for `vision-llm`.", max_length=2000,
       hosted=False, label="Vision endpoint base URL", advanced=True, consumer="perception.vision_llm"),
    _o(_PC, "model", "str", "Vision model name at `base_url`.", max_length=200, hosted=False,
       label="Vision model", advanced=True, consumer="perception.vision_llm"),
    _o(_PC, "api_key", "secret", "Key for `base_url`.", max_length=500, hosted=False,
       label="Vision endpoint API key", advanced=True, consumer="perception.vision_llm"),
    # ------------------------------------------------------------------ transport (API only)
    _o(_TR, "transport_type", "choice", "How the call's media travel. `daily`: people join the conversation_url "
       "page in a browser; here that page speaks WebRTC with this server itself (aiortc), the hosted product's "
       "equivalent of its Daily room. `livekit` (the agent joins your LiveKit room) is refused.",
       choices=("daily", "livekit"), unsupported="calls here are WebRTC between the conversation_url page and this "
       "server; no LiveKit room is joined", neutral="daily"),
)

_BY_KEY: dict[tuple[str, str], Option] = {}
for _opt in OPTIONS:
    _key = (_opt.layer, f"{_opt.parent}.{_opt.name}" if _opt.parent else _opt.name)
    assert _key not in _BY_KEY, f"{_key} is declared twice"
    _BY_KEY[_key] = _opt


def get(layer: str, name: str) -> Option:
    """The option ``name`` of ``layer`` (``"voice_settings.speed"`` for a sub-key)."""
    return _BY_KEY[(layer, name)]


def options(layer: str, *, top_level: bool = True) -> tuple[Option, ...]:
    """The options of ``layer`` in declaration order (without map sub-keys unless ``top_level`` is False)."""
    return tuple(o for o in OPTIONS if o.layer == layer and (not top_level or not o.parent))


def default(layer: str, name: str) -> Any:
    return get(layer, name).default


def secrets() -> tuple[Option, ...]:
    return tuple(o for o in OPTIONS if o.secret)


def full_only_set(layers: Mapping[str, Any]) -> tuple[Option, ...]:
    """The options in ``layers`` (a PAL's layers as given) that only a full-mode pipeline can
    honour, set to something other than their default: an echo-mode PAL must not have them."""
    found = []
    for opt in OPTIONS:
        raw = layers.get(opt.layer) if isinstance(layers, Mapping) else None
        if opt.full_only and isinstance(raw, Mapping) and raw.get(opt.name) not in (None, "", opt.default):
            found.append(opt)
    return tuple(found)


def legacy_names(layer: str) -> dict[str, str]:
    return {o.legacy_name: o.name for o in options(layer) if o.legacy_name}
