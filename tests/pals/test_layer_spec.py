"""The layer spec is the one declaration of the PAL's options: the REST serializers, the OpenAPI
schema and the PAL editor list exactly its options, every supported option reaches the
pipeline's configuration, and an option nothing consumes is refused, never silently kept."""
from __future__ import annotations

import importlib
import inspect

import pytest

from conversations.realtime import layerspec as spec
from conversations.realtime.config import PipelineConfig
from pals import editor_fields, editor_layout, forms, layers

SERIALIZERS = {
    "conversational_flow": layers.ConversationalFlowLayerSerializer, "stt": layers.SttLayerSerializer,
    "llm": layers.LlmLayerSerializer, "tts": layers.TtsLayerSerializer, "perception": layers.PerceptionLayerSerializer,
    "transport": layers.TransportLayerSerializer,
}


def test_the_serializers_declare_exactly_the_specs_options():
    assert set(layers.LayersSerializer().fields) == set(spec.LAYERS)
    for layer, serializer in SERIALIZERS.items():
        assert set(serializer().fields) == {o.name for o in spec.options(layer)}, layer
        for opt in spec.options(layer):
            assert serializer().fields[opt.name].help_text == opt.api_help


def test_the_openapi_schema_lists_exactly_the_specs_options():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    for layer, serializer in SERIALIZERS.items():
        name = serializer.__name__.removesuffix("Serializer")
        found = [v for k, v in components.items() if k in (name, name + "Request")]
        assert found, f"no schema component for {layer}"
        for component in found:
            assert set(component["properties"]) == {o.name for o in spec.options(layer)}, layer


def test_the_editor_shows_every_option_with_a_label_and_derives_its_sections():
    form = forms.PalEditorForm()
    for opt in spec.OPTIONS:
        if opt.label:
            field = form.fields[opt.form_field]
            assert field.label == opt.label and (opt.form_field in editor_layout.ADVANCED) == opt.advanced
            assert editor_fields.BY_PATH[".".join(opt.path)] == opt.form_field
        else:
            # kept out of the editor: refused (unsupported), or edited through fields of their own
            assert opt.unsupported or opt.dotted in ("llm.model", "tts.voice_settings"), opt.dotted
    in_sections = {name for _, _, names in editor_layout.SECTIONS for name in names}
    assert {o.form_field for o in spec.OPTIONS if o.label} <= in_sections
    assert set(editor_fields.SECRET_CLEAR) == {o.form_field for o in spec.secrets() if o.label and o.kind == "secret"}


def _sample(opt: spec.Option):
    """A valid value of ``opt`` that is neither its default nor its neutral value."""
    if opt.kind == "choice":
        return next(c for c in opt.choices if c not in (opt.default, opt.neutral, "auto"))
    if opt.kind == "bool":
        return not opt.default if opt.default is not None else opt.neutral is not True
    if opt.kind in ("float", "int"):
        return opt.maximum if opt.kind == "float" else int(opt.maximum)
    if opt.kind in ("str_map", "json_map", "secret_map"):
        return {"x-sample": "1"}
    if opt.kind == "str_list":
        return ["Is the person smiling?"]
    if opt.kind == "tools":
        return [{"type": "function", "function": {"name": "sample"}}]
    if opt.kind == "url":
        return "http://sample.example/v1"
    return "sample-value"


def _typed(cfg: PipelineConfig, opt: spec.Option):
    """Where the typed configuration holds ``opt`` (None: not in a typed field)."""
    section = {"conversational_flow": cfg.flow, "stt": cfg.stt, "llm": cfg.llm, "tts": cfg.tts}.get(opt.layer)
    if section is None:
        return None
    if opt.consumer.startswith("config.FlowConfig"):
        section = cfg.flow  # the legacy stt options of turn-taking live there too
    if opt.name == "external_voice_id":
        return cfg.tts.voice_id
    if opt.parent:
        return getattr(section, opt.name, None) if hasattr(section, opt.name) else section.voice_settings.get(opt.name)
    names = {"participant_pause_sensitivity": "pause_sensitivity",
             "participant_interrupt_sensitivity": "interrupt_sensitivity"}
    return getattr(section, names.get(opt.name, opt.name), None)


@pytest.mark.parametrize("opt", [o for o in spec.OPTIONS if not o.unsupported], ids=lambda o: o.dotted)
def test_every_supported_option_reaches_what_a_call_reads(opt):
    value = _sample(opt)
    raw = {opt.layer: ({opt.parent: {opt.name: value}} if opt.parent else {opt.name: value})}
    cfg = PipelineConfig.from_layers("prompt", "", raw)
    got = _typed(cfg, opt)
    if got is not None:
        if opt.kind == "tools":
            assert [dict(t) for t in got] == value
        elif opt.kind in ("str_map", "json_map", "secret_map"):
            assert dict(got).get("x-sample") == "1"
        else:
            assert got == value, f"{opt.dotted}: {got!r} != {value!r}"
        return
    # options the perception monitor and the session read from the layers as given
    assert cfg.layers[opt.layer][opt.name] == value
    module = importlib.import_module({"perception.options": "conversations.realtime.perception.options",
                                      "perception.vision_llm": "conversations.realtime.perception.options",
                                      "session (perception policy)": "conversations.live.perception"}[opt.consumer])
    assert opt.name in inspect.getsource(module), f"{opt.consumer} does not read {opt.name}"


@pytest.mark.parametrize("opt", [o for o in spec.OPTIONS if o.unsupported], ids=lambda o: o.dotted)
def test_an_option_nothing_uses_is_refused_unless_it_asks_for_nothing(opt):
    from rest_framework.exceptions import ValidationError

    value = _sample(opt)
    assert value != opt.neutral
    with pytest.raises(ValidationError) as err:
        layers.validate_layers({opt.layer: {opt.name: value}})
    detail = err.value.detail[opt.layer][opt.name]
    message = str(detail[0] if isinstance(detail, list) else detail)
    assert "not supported here yet" in message and opt.unsupported in message
    assert layers.validate_layers({opt.layer: {opt.name: opt.neutral}}) == {opt.layer: {opt.name: opt.neutral}}


def test_hosted_names_and_legacy_option_names_are_stored_as_ours():
    stored = layers.validate_layers({
        "conversational_flow": {"turn_detection_model": "sparrow-1", "pal_interruptibility": "low"},
        "perception": {"perception_model": "raven-0", "ambient_awareness_queries": ["Smiling?"]}})
    assert stored == {"conversational_flow": {"turn_detection_model": "smart-turn", "replica_interruptibility": "low"},
                      "perception": {"perception_model": "mediapipe", "visual_awareness_queries": ["Smiling?"]}}
    cfg = PipelineConfig.from_layers("p", "", {"conversational_flow": {"turn_detection_model": "sparrow-0"}})
    assert cfg.flow.turn_detection_model == "smart-turn" and cfg.flow.smart_turn


def test_the_stock_pal_is_defined_once_and_leans_on_the_defaults():
    from pals import stock

    migration = importlib.import_module("pals.migrations.0002_stock_data")
    assert "ensure_stock" in inspect.getsource(migration)
    cfg = PipelineConfig.from_layers(stock.STOCK_PAL["system_prompt"], "", stock.STOCK_PAL["layers"])
    assert cfg.flow.turn_taking_patience == spec.default("conversational_flow", "turn_taking_patience")
    assert cfg.llm.max_tokens == spec.default("llm", "max_tokens") and cfg.tts.voice_id == "en-us+f3"
