"""The PAL's layer configuration: validation, normalisation and documentation of every option.

The options themselves (names, types, defaults, choices, limits, help texts) are declared once,
in ``conversations.realtime.layerspec``; the serializer fields here are generated from it, so
the REST API, the OpenAPI schema (drf-spectacular reads the fields' ``help_text``), the PAL
Maker forms and the admin, which all validate through ``validate_layers``, list the same
options. What this module adds is the rules between options and against the installation:
engine names that exist here, tool schemas, what a cloud engine cannot work without. The rules
on stored layers that need no DRF (secret masking, the echo-mode check) are ``pals.stored_layers``.
"""
from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from conversations.realtime import layerspec as spec
from cvi_site.serializers import StrictSerializer
from pals.stored_layers import plain

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def engine_names(kind: str) -> list[str]:
    """Names of the engines of ``kind`` (stt, llm, tts, vad) that exist here."""
    from conversations.realtime.engines.registry import available_engines

    entries = available_engines().get(kind, [])
    return [e["name"] if isinstance(e, dict) else str(e) for e in entries]


class StrictLayerSerializer(StrictSerializer):
    """One layer's options: legacy option names accepted, unknown ones named with the known
    ones, hosted names of choices stored as ours, unsupported values refused."""

    layer_name = ""
    not_object_message = "must be an object"

    def rename(self, data: dict) -> dict:
        if self.layer_name not in spec.LAYERS:
            return data
        legacy = spec.legacy_names(self.layer_name)
        data = {legacy.get(k, k): v for k, v in data.items()}
        return {k: spec.get(self.layer_name, k).canonical(v) if (self.layer_name, k) in _DECLARED else v
                for k, v in data.items()}

    def unknown_message(self, unknown: list[str]) -> str:
        return f"unknown option(s) {', '.join(unknown)}; known options: {', '.join(sorted(self.fields))}"

    def to_internal_value(self, data):
        attrs = super().to_internal_value(data)
        for name, value in attrs.items():
            opt = spec.get(self.layer_name, name) if (self.layer_name, name) in _DECLARED else None
            if opt is not None and opt.unsupported and value != opt.neutral:
                raise serializers.ValidationError(
                    {name: f"not supported here yet: {opt.unsupported}; leave it out (or send {opt.neutral!r})"})
        return attrs


_DECLARED = {(o.layer, o.name) for o in spec.OPTIONS if not o.parent}


def _field(opt: spec.Option) -> serializers.Field:
    """The DRF field for one option of the spec."""
    common: dict[str, Any] = {"required": False, "help_text": opt.api_help}
    kind = opt.kind
    if kind == "choice":  # the hosted names of a choice are mapped onto ours first (rename)
        return serializers.ChoiceField(opt.choices, **common)
    if kind == "bool":
        return serializers.BooleanField(**common)
    if kind == "float":
        return serializers.FloatField(min_value=opt.minimum, max_value=opt.maximum, **common)
    if kind == "int":
        return serializers.IntegerField(min_value=int(opt.minimum), max_value=int(opt.maximum), **common)
    if kind in ("str_map", "secret_map"):
        return serializers.DictField(child=serializers.CharField(max_length=2000), **common)
    if kind == "json_map":
        return serializers.DictField(**common)
    if kind == "str_list":
        return serializers.ListField(child=serializers.CharField(max_length=opt.max_length or 500),
                                     max_length=int(opt.maximum) if opt.maximum else None, **common)
    if kind == "tools":
        return serializers.ListField(child=serializers.JSONField(), max_length=int(opt.maximum), **common)
    # str, text, url, secret, engine
    return serializers.CharField(allow_blank=kind != "engine", max_length=opt.max_length, **common)


def _layer_fields(layer: str) -> type[StrictLayerSerializer]:
    """A serializer base with one generated field per option of ``layer``."""
    attrs: dict[str, Any] = {opt.name: _field(opt) for opt in spec.options(layer)}
    attrs["layer_name"] = layer
    return type(f"{layer.title().replace('_', '')}Fields", (StrictLayerSerializer,), attrs)


def _http_url(value: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """An endpoint URL: one of ``schemes``, and no private address while ALLOW_PRIVATE_URLS is off."""
    from cvi_site.validators import outbound_url_problem, scheme_names

    if value and not re.match(r"^[a-z]+://[^\s/]+", value):
        raise serializers.ValidationError(f"must be an {scheme_names(schemes)} URL such as https://api.example.com/v1")
    if value:
        problem = outbound_url_problem(value, schemes=schemes)
        if problem:
            raise serializers.ValidationError(problem)
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


class PerceptionLayerSerializer(_layer_fields("perception")):
    def validate_base_url(self, value: str) -> str:
        return _http_url(value)

    def validate_visual_tools(self, value: list) -> list:
        return _validate_tools(value)

    def validate(self, attrs):
        if attrs.get("perception_model") == "vision-llm" and not attrs.get("base_url"):
            raise serializers.ValidationError({"base_url": "is required when perception_model is vision-llm"})
        return attrs


class ConversationalFlowLayerSerializer(_layer_fields("conversational_flow")):
    def validate(self, attrs):
        from conversations.realtime.wake import phrase_words

        for name in ("wake_phrase", "sleep_phrase"):
            if attrs.get(name) and not phrase_words(attrs[name]):
                raise serializers.ValidationError({name: "must contain a word (letters or digits)"})
        if attrs.get("sleep_phrase") and not attrs.get("wake_phrase"):
            raise serializers.ValidationError({"sleep_phrase": "needs a wake_phrase (nothing would wake the agent)"})
        if attrs.get("wake_phrase") and not attrs.get("sleep_phrase") and attrs.get("idle_engagement", "off") != "off":
            raise serializers.ValidationError({"idle_engagement": (
                "needs a sleep_phrase when wake_phrase is set: without one the agent is awake only for the turn "
                "that names it, and an agent asleep never speaks up")})
        return attrs


class TransportLayerSerializer(_layer_fields("transport")):
    pass


class SttLayerSerializer(_layer_fields("stt")):
    def validate_stt_engine(self, value: str) -> str:
        names = engine_names("stt")
        if value not in names:
            raise serializers.ValidationError(f"unknown STT engine {value!r}; available here: {', '.join(names)}")
        return value

    def validate_base_url(self, value: str) -> str:
        return _http_url(value, schemes=("http", "https", "ws", "wss"))

    def validate(self, attrs):
        from conversations.realtime.engines.registry import CLOUD_STT_REQUIRES

        engine = attrs.get("stt_engine", "")
        if engine in CLOUD_STT_REQUIRES:
            for name in CLOUD_STT_REQUIRES[engine]:
                if not attrs.get(name):
                    raise serializers.ValidationError({name: f"is required by the {engine} STT engine"})
        else:
            for name in ("api_key", "base_url"):
                if attrs.get(name):
                    raise serializers.ValidationError(
                        {name: f"is only used by a cloud STT engine, not {engine or 'the embedded Whisper'}"})
        return attrs


class LlmLayerSerializer(_layer_fields("llm")):
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


class TtsLayerSerializer(_layer_fields("tts")):
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
        speed_opt = spec.get("tts", "voice_settings.speed")
        speed = value.get("speed")
        if speed is not None:
            if isinstance(speed, bool) or not isinstance(speed, (int, float)) or \
                    not speed_opt.minimum <= speed <= speed_opt.maximum:
                raise serializers.ValidationError(
                    f"speed must be a number from {speed_opt.minimum:.1f} to {speed_opt.maximum:.1f}")
        region = value.get("region")
        if region is not None and (not isinstance(region, str) or len(region) > spec.get("tts", "voice_settings.region").max_length):
            raise serializers.ValidationError("region must be a short string such as westeurope")
        return value


class LayersSerializer(StrictLayerSerializer):
    layer_name = "layers"
    perception = PerceptionLayerSerializer(required=False)
    conversational_flow = ConversationalFlowLayerSerializer(required=False)
    stt = SttLayerSerializer(required=False)
    llm = LlmLayerSerializer(required=False)
    tts = TtsLayerSerializer(required=False)
    transport = TransportLayerSerializer(required=False)


def validate_layers(layers: Any, *, warnings: list[str] | None = None) -> dict:
    """Validate and normalise a layers object; raises DRF ``ValidationError`` with paths. The hosted
    product's managed engine names are stored as the engines they mean here
    (``engines.hosted``); ``warnings``, when given, collects one line per such mapping."""
    if layers in (None, ""):
        return {}
    if isinstance(layers, dict):
        from conversations.realtime.engines.hosted import map_hosted_names

        layers, mapped = map_hosted_names(layers)
        if warnings is not None:
            warnings.extend(mapped)
    serializer = LayersSerializer(data=layers)
    serializer.is_valid(raise_exception=True)
    return plain(serializer.validated_data)
