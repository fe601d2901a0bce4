"""The PAL's layer configuration: validation, normalisation and documentation of every option.

These serializers are the one definition of the layers: the REST API, the PAL Maker forms and
the admin all validate through ``validate_layers``, and drf-spectacular documents the options
from their ``help_text``. Engine names are checked against the engines that actually exist in
this installation (``conversations.realtime.engines.registry``).
"""
from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from conversations.realtime.config import TURN_DETECTION_ALIASES, TURN_DETECTION_MODELS
from cvi_site.serializers import StrictSerializer

PATIENCE = ("low", "medium", "high")
SENSITIVITY = ("superlow", "verylow", "low", "medium", "high", "auto")
IDLE_ENGAGEMENT = ("off", "patient", "eager")
VOICE_ISOLATION = ("near", "off")
# Ours: the embedded perception engine, an OpenAI-compatible vision model, or nothing.
PERCEPTION_MODELS = ("mediapipe", "vision-llm", "off")
PERCEPTION_ALIASES = {"raven-0": "mediapipe", "raven-1": "mediapipe", "basic": "mediapipe"}

# Legacy option names accepted everywhere and stored under the new name.
LEGACY_ALIASES = {
    "perception": {
        "ambient_awareness_queries": "visual_awareness_queries",
        "perception_tool_prompt": "visual_tool_prompt",
        "perception_tools": "visual_tools",
    },
    "conversational_flow": {"pal_interruptibility": "replica_interruptibility"},
}

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def engine_names(kind: str) -> list[str]:
    """Names of the engines of ``kind`` (stt, llm, tts, vad) that exist here."""
    from conversations.realtime.engines.registry import available_engines

    entries = available_engines().get(kind, [])
    return [e["name"] if isinstance(e, dict) else str(e) for e in entries]


class StrictLayerSerializer(StrictSerializer):
    """One layer's options: legacy option names accepted, unknown ones named with the known ones."""

    layer_name = ""
    not_object_message = "must be an object"

    def rename(self, data: dict) -> dict:
        aliases = LEGACY_ALIASES.get(self.layer_name, {})
        return {aliases.get(k, k): v for k, v in data.items()}

    def unknown_message(self, unknown: list[str]) -> str:
        return f"unknown option(s) {', '.join(unknown)}; known options: {', '.join(sorted(self.fields))}"


def _http_url(value: str) -> str:
    if value and not re.match(r"^https?://[^\s/]+", value):
        raise serializers.ValidationError("must be an http(s) URL such as https://api.example.com/v1")
    return value.rstrip("/")


def _validate_tools(tools: list[Any]) -> list[dict]:
    """OpenAI function-calling schema: {"type": "function", "function": {name, description, parameters}}."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    seen: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"tool {i}"
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
            raise serializers.ValidationError(f'{where}: expected {{"type": "function", "function": {{...}}}}')
        fn = tool["function"]
        name = fn.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise serializers.ValidationError(f"{where}: function.name must be 1-64 letters, digits, _ or -")
        if name in seen:
            raise serializers.ValidationError(f"{where}: duplicate function name {name!r}")
        seen.add(name)
        if "description" in fn and not isinstance(fn["description"], str):
            raise serializers.ValidationError(f"{where} ({name}): description must be a string")
        params = fn.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict) or params.get("type", "object") != "object":
            raise serializers.ValidationError(f"{where} ({name}): parameters must be a JSON Schema of type object")
        try:
            Draft202012Validator.check_schema(params)
        except SchemaError as exc:
            raise serializers.ValidationError(f"{where} ({name}): parameters is not a valid JSON Schema: {exc.message}")
        extra = set(fn) - {"name", "description", "parameters", "strict"}
        if extra:
            raise serializers.ValidationError(f"{where} ({name}): unknown function field(s) {', '.join(sorted(extra))}")
    return tools


class PerceptionLayerSerializer(StrictLayerSerializer):
    layer_name = "perception"
    perception_model = serializers.CharField(
        required=False,
        help_text="Perception engine: `mediapipe` (embedded, CPU: presence, attention, expression, "
        "lighting, motion), `vision-llm` (an OpenAI-compatible vision model at `base_url`), or `off`. "
        "Hosted names raven-0/raven-1/basic mean `mediapipe`.",
    )
    base_url = serializers.CharField(
        required=False, allow_blank=True, help_text="(ours) OpenAI-compatible endpoint of a vision model, for `vision-llm`."
    )
    model = serializers.CharField(required=False, allow_blank=True, help_text="(ours) Vision model name at `base_url`.")
    api_key = serializers.CharField(required=False, allow_blank=True, help_text="(ours) Key for `base_url`.")
    visual_awareness_queries = serializers.ListField(
        child=serializers.CharField(max_length=500), required=False, max_length=20,
        help_text="Questions about what the camera shows, re-evaluated about once a second; the answers "
        "are given to the LLM. Legacy name: ambient_awareness_queries.",
    )
    perception_analysis_queries = serializers.ListField(
        child=serializers.CharField(max_length=500), required=False, max_length=20,
        help_text="Questions answered once when the call ends (application.perception_analysis).",
    )
    visual_tool_prompt = serializers.CharField(
        required=False, allow_blank=True, help_text="Instructions for when to call the visual tools (legacy perception_tool_prompt)."
    )
    visual_tools = serializers.ListField(
        child=serializers.JSONField(), required=False, max_length=20,
        help_text="OpenAI function schemas fired as conversation.perception_tool_call when their condition "
        "becomes true (legacy perception_tools).",
    )
    pause_when_absent = serializers.BooleanField(
        required=False, help_text="(ours) Pause a reply when the user leaves the frame and greet them on return."
    )
    absent_counts_as_left = serializers.BooleanField(
        required=False, help_text="(ours) participant_left_timeout also counts time with no face seen."
    )

    def validate_perception_model(self, value: str) -> str:
        value = PERCEPTION_ALIASES.get(value, value)
        if value not in PERCEPTION_MODELS:
            raise serializers.ValidationError(f"unknown perception model {value!r}; choose one of {', '.join(PERCEPTION_MODELS)}")
        return value

    def validate_base_url(self, value: str) -> str:
        return _http_url(value)

    def validate_visual_tools(self, value: list) -> list:
        return _validate_tools(value)

    def validate(self, attrs):
        if attrs.get("perception_model") == "vision-llm" and not attrs.get("base_url"):
            raise serializers.ValidationError({"base_url": "is required when perception_model is vision-llm"})
        return attrs


class ConversationalFlowLayerSerializer(StrictLayerSerializer):
    layer_name = "conversational_flow"
    turn_detection_model = serializers.CharField(
        required=False,
        help_text="`smart-turn` (default: at each pause a trained end-of-turn model, Smart Turn v3.2, hears "
        "whether the user sounds finished, and the transcript is checked for an unfinished thought) or "
        "`vad` (pause length only). Hosted names sparrow-0/sparrow-1 mean `smart-turn`.",
    )
    turn_taking_patience = serializers.ChoiceField(
        PATIENCE, required=False,
        help_text="How long a pause ends the user's turn, and how sure the turn model must be that the user "
        "is done. low: 0.2 s after a complete thought, up to 0.9 s after an unfinished one, threshold 0.35 "
        "(snappy); medium: 0.3–1.6 s, 0.5; high: 0.6–2.4 s, 0.7 (patient).",
    )
    replica_interruptibility = serializers.ChoiceField(
        PATIENCE, required=False,
        help_text="How easily the user interrupts the agent: high: as soon as speech starts; medium: 0.4 s of "
        "speech and a word; low: 0.8 s and 3 words. Backchannels such as 'mm-hm' never interrupt. "
        "Alias pal_interruptibility.",
    )
    voice_isolation = serializers.ChoiceField(VOICE_ISOLATION, required=False, help_text="`near`: favour the closest voice; `off`.")
    wake_phrase = serializers.CharField(required=False, allow_blank=True, max_length=100,
                                        help_text="If set, the agent only answers turns that contain this phrase.")
    idle_engagement = serializers.ChoiceField(IDLE_ENGAGEMENT, required=False,
                                              help_text="Whether the agent speaks up after a long silence: off, patient or eager.")

    def validate_turn_detection_model(self, value: str) -> str:
        value = TURN_DETECTION_ALIASES.get(value, value)
        if value not in TURN_DETECTION_MODELS:
            raise serializers.ValidationError(f"unknown turn detection model {value!r}; choose one of {', '.join(TURN_DETECTION_MODELS)}")
        return value


class SttLayerSerializer(StrictLayerSerializer):
    layer_name = "stt"
    stt_engine = serializers.CharField(required=False, help_text="Speech-to-text engine (see GET /v2/engines).")
    hotwords = serializers.CharField(required=False, allow_blank=True, max_length=1000,
                                     help_text="Words and names to favour, as a hint string.")
    participant_pause_sensitivity = serializers.ChoiceField(
        SENSITIVITY, required=False, help_text="Legacy: how quickly a pause ends the turn (high = quick). Overrides turn_taking_patience."
    )
    participant_interrupt_sensitivity = serializers.ChoiceField(
        SENSITIVITY, required=False, help_text="Legacy: how easily speech interrupts the agent (high = easily)."
    )
    smart_turn_detection = serializers.BooleanField(required=False, help_text="Legacy switch for the complete-thought check.")

    def validate_stt_engine(self, value: str) -> str:
        names = engine_names("stt")
        if value not in names:
            raise serializers.ValidationError(f"unknown STT engine {value!r}; available here: {', '.join(names)}")
        return value


class LlmLayerSerializer(StrictLayerSerializer):
    layer_name = "llm"
    model = serializers.CharField(
        required=False, max_length=200,
        help_text="An embedded model (see GET /v2/engines), or with `base_url` the model name of that endpoint.",
    )
    base_url = serializers.CharField(
        required=False, allow_blank=True, max_length=2000,
        help_text="OpenAI-compatible endpoint without /chat/completions (e.g. https://api.openai.com/v1); must stream.",
    )
    api_key = serializers.CharField(required=False, allow_blank=True, max_length=500, help_text="Key for `base_url` (never shown again in full).")
    headers = serializers.DictField(child=serializers.CharField(max_length=2000), required=False,
                                    help_text="Extra HTTP headers sent to `base_url`.")
    extra_body = serializers.DictField(required=False, help_text="Extra JSON fields merged into each request body.")
    default_query = serializers.DictField(child=serializers.CharField(max_length=500), required=False,
                                          help_text="Query parameters added to each request.")
    speculative_inference = serializers.BooleanField(
        required=False, help_text="Start thinking at a short pause, before the turn is certainly over (default true)."
    )
    tools = serializers.ListField(child=serializers.JSONField(), required=False, max_length=64,
                                  help_text="OpenAI function schemas; calls are sent to the client as conversation.tool_call.")
    temperature = serializers.FloatField(required=False, min_value=0.0, max_value=2.0, help_text="(ours) Sampling temperature.")
    max_tokens = serializers.IntegerField(required=False, min_value=16, max_value=4096, help_text="(ours) Longest reply in tokens.")

    def validate_base_url(self, value: str) -> str:
        return _http_url(value)

    def validate_tools(self, value: list) -> list:
        return _validate_tools(value)

    def validate(self, attrs):
        if attrs.get("model") and not attrs.get("base_url"):
            from conversations.realtime.engines.registry import canonical_name

            names = [n for n in engine_names("llm") if n != "openai"]
            attrs["model"] = canonical_name("llm", attrs["model"])  # an old name is stored as the current one
            if attrs["model"] not in names:
                raise serializers.ValidationError(
                    {"model": f"unknown embedded model {attrs['model']!r}; available here: {', '.join(names)} "
                              "(or set base_url to use a remote OpenAI-compatible model)"}
                )
        return attrs


class TtsLayerSerializer(StrictLayerSerializer):
    layer_name = "tts"
    tts_engine = serializers.CharField(required=False, help_text="Text-to-speech engine (see GET /v2/engines).")
    voice_id = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                     help_text="Voice of the engine, e.g. `en-us`, `en-gb+f3` or `es` for eSpeak NG.")
    external_voice_id = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                              help_text="Voice id at a cloud TTS provider.")
    api_key = serializers.CharField(required=False, allow_blank=True, max_length=500, help_text="Key of a cloud TTS provider.")
    tts_model_name = serializers.CharField(required=False, allow_blank=True, max_length=200, help_text="Model of a cloud TTS provider.")
    base_url = serializers.CharField(
        required=False, allow_blank=True, max_length=2000,
        help_text="(ours) Endpoint of a remote TTS engine: your own OpenAI-compatible speech server for `openai-tts` "
                  "(e.g. http://gpu-box:8880/v1), or another region/proxy of a cloud provider.")
    voice_settings = serializers.DictField(required=False, help_text="`speed` (0.5–2.0, 1 = normal) and engine-specific "
                                           "settings (`region` for azure; stability, similarity_boost… for elevenlabs).")
    tts_emotion_control = serializers.BooleanField(required=False, help_text="Let the provider vary emotion (cloud engines).")
    pronunciation_dictionary_id = serializers.CharField(required=False, allow_blank=True, max_length=200)

    def validate_tts_engine(self, value: str) -> str:
        names = engine_names("tts")
        if value not in names:
            raise serializers.ValidationError(f"unknown TTS engine {value!r}; available here: {', '.join(names)}")
        return value

    def validate_base_url(self, value: str) -> str:
        return _http_url(value)

    def validate(self, attrs):
        from conversations.realtime.engines.cloud_tts import REQUIRES

        engine = attrs.get("tts_engine", "")
        if engine in REQUIRES:
            have = {"api_key": attrs.get("api_key"), "voice_id": attrs.get("voice_id") or attrs.get("external_voice_id")}
            for name in REQUIRES[engine]:
                if not have[name]:
                    raise serializers.ValidationError({name: f"is required by the {engine} TTS engine"})
            if engine == "azure" and not attrs.get("base_url") and not (attrs.get("voice_settings") or {}).get("region"):
                raise serializers.ValidationError({"voice_settings": "azure needs voice_settings.region (or a base_url)"})
        elif attrs.get("base_url"):
            raise serializers.ValidationError({"base_url": f"is only used by a remote TTS engine, not {engine or 'espeak-ng'}"})
        return attrs

    def validate_voice_settings(self, value: dict) -> dict:
        speed = value.get("speed")
        if speed is not None:
            if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0.5 <= speed <= 2.0:
                raise serializers.ValidationError("speed must be a number from 0.5 to 2.0")
        return value


class LayersSerializer(StrictLayerSerializer):
    layer_name = "layers"
    perception = PerceptionLayerSerializer(required=False)
    conversational_flow = ConversationalFlowLayerSerializer(required=False)
    stt = SttLayerSerializer(required=False)
    llm = LlmLayerSerializer(required=False)
    tts = TtsLayerSerializer(required=False)


SECRET_FIELDS = (("llm", "api_key"), ("tts", "api_key"), ("perception", "api_key"))


def validate_layers(layers: Any) -> dict:
    """Validate and normalise a layers object; raises DRF ``ValidationError`` with paths."""
    if layers in (None, ""):
        return {}
    serializer = LayersSerializer(data=layers)
    serializer.is_valid(raise_exception=True)
    return _plain(serializer.validated_data)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def mask_secrets(layers: dict) -> dict:
    """A copy of ``layers`` safe to show: secrets reduced to their last four characters."""
    out = _plain(layers)
    for layer, field in SECRET_FIELDS:
        value = out.get(layer, {}).get(field)
        if value:
            out[layer][field] = "****" + value[-4:] if len(value) > 8 else "****"
    return out
