"""The PAL editor's field map, generated from the layer spec.

``OPTIONS`` says, for every field of the editor that holds a PAL option, where its value lives in
the PAL's data (the API's shape) and how it is shown; ``BY_PATH`` goes the other way, from an
option's dotted path to its field. ``SpecFields`` is a form with one field per layer option of
``conversations.realtime.layerspec`` that has an editor label (label, help, kind and limits from
the spec), the base of ``pals.forms.PalEditorForm``.
"""
from __future__ import annotations

from dataclasses import dataclass

from django import forms

from conversations.realtime import layerspec as spec
from pals.editor_text import PERCEPTION_LABELS, SENSITIVITY_LABELS, TRISTATE, TURN_MODEL_LABELS


@dataclass(frozen=True)
class Option:
    """One form field and where its value lives in the PAL's data (the API's shape)."""

    field: str
    path: tuple[str, ...]
    kind: str = "str"  # str, choice, multi, lines, csv, json, bool_on, bool_off, tristate, float, int, secret


def _form_kind(opt: spec.Option) -> str:
    """How the editor shows a layer option of the spec."""
    if opt.kind == "bool":
        return "tristate" if opt.default is None else "bool_off" if opt.default else "bool_on"
    return {"choice": "choice", "engine": "choice", "secret": "secret", "str_map": "json", "json_map": "json",
            "secret_map": "json",  # shown with its values masked; a masked value sent back keeps the stored one
            "tools": "json", "str_list": "lines", "float": "float", "int": "int"}.get(opt.kind, "str")


#: the layer options the editor shows: every option of the spec with a label
EDITOR_OPTIONS: tuple[spec.Option, ...] = tuple(o for o in spec.OPTIONS if o.label)

OPTIONS: tuple[Option, ...] = (
    Option("pal_name", ("pal_name",)),
    Option("pipeline_mode", ("pipeline_mode",), "choice"),
    Option("system_prompt", ("system_prompt",)),
    Option("context", ("context",)),
    Option("greeting", ("greeting",)),
    Option("default_face_id", ("default_face_id",), "choice"),
    Option("document_ids", ("document_ids",), "csv"),
    Option("document_tags", ("document_tags",), "csv"),
    Option("objectives_id", ("objectives_id",), "choice"),
    Option("guardrail_ids", ("guardrail_ids",), "multi"),
    Option("guardrails_id", ("guardrails_id",), "choice"),
) + tuple(Option(o.form_field, o.path, _form_kind(o)) for o in EDITOR_OPTIONS)
BY_PATH = {".".join(o.path): o.field for o in OPTIONS}
# The LLM model name is one option shown as two fields (embedded choice / endpoint model).
BY_PATH["layers.llm.model"] = "llm_model"
BY_PATH["layers.tts.voice_settings"] = spec.get("tts", "voice_settings.speed").form_field

#: each secret's "remove the stored key" checkbox, by the secret's field
SECRET_CLEAR = {o.form_field: o.form_field + "_clear" for o in EDITOR_OPTIONS if o.kind == "secret"}


def textarea(rows: int = 3, **attrs) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": rows, **attrs})


JSON_ATTRS = {"spellcheck": "false", "class": "mono", "data-json": "1"}
#: presentation only: placeholders and input hints of some fields
_WIDGET_ATTRS: dict[str, dict[str, str]] = {
    "stt_hotwords": {"placeholder": "OpenCVI, Ada Lovelace, Zürich"},
    "stt_base_url": {"placeholder": "https://westeurope.stt.speech.microsoft.com", "spellcheck": "false"},
    "llm_base_url": {"placeholder": "https://api.example.com/v1", "inputmode": "url", "spellcheck": "false"},
    "llm_temperature": {"step": "0.1", "placeholder": str(spec.default("llm", "temperature"))},
    "llm_max_tokens": {"placeholder": str(spec.default("llm", "max_tokens"))},
    "tts_voice_id": {"list": "voice-list", "placeholder": "en-us", "spellcheck": "false"},
    "tts_speed": {"step": "0.05", "placeholder": "1.0"},
    "tts_base_url": {"placeholder": "http://gpu-box:8880/v1", "spellcheck": "false"},
    "tts_region": {"placeholder": "westeurope", "spellcheck": "false"},
}
#: labels of some choices (the rest show their value)
_CHOICE_LABELS: dict[str, dict[str, str]] = {
    "cf_turn_detection_model": TURN_MODEL_LABELS,
    "pc_perception_model": PERCEPTION_LABELS,
    "stt_pause_sensitivity": SENSITIVITY_LABELS,
    "stt_interrupt_sensitivity": SENSITIVITY_LABELS,
}


def _editor_field(opt: spec.Option) -> forms.Field:
    """The editor's field for one layer option of the spec (label, help and limits from it)."""
    kind = _form_kind(opt)
    name = opt.form_field
    common = {"label": opt.label, "required": False, "help_text": opt.help.replace("`", "")}
    attrs = _WIDGET_ATTRS.get(name, {})
    if kind == "choice":
        labels = _CHOICE_LABELS.get(name, {})
        default = f"Default ({opt.default})" if opt.default is not None else "Default"
        return forms.ChoiceField(choices=[("", labels.get("", default))]
                                 + [(c, labels.get(c, c.capitalize())) for c in opt.choices], **common)
    if kind == "tristate":
        return forms.ChoiceField(choices=TRISTATE, **common)
    if kind in ("bool_on", "bool_off"):
        return forms.BooleanField(initial=kind == "bool_off", **common)
    if kind == "float":
        return forms.FloatField(widget=forms.NumberInput(attrs=attrs), **common)
    if kind == "int":
        return forms.IntegerField(widget=forms.NumberInput(attrs=attrs), **common)
    if kind == "secret":
        return forms.CharField(max_length=opt.max_length, widget=forms.PasswordInput(
            attrs={"autocomplete": "off"}, render_value=False), **common)
    if kind == "json":
        return forms.CharField(widget=textarea(6 if opt.kind == "tools" else 2, **JSON_ATTRS), **common)
    if kind == "lines" or opt.kind == "text":
        return forms.CharField(widget=textarea(3 if kind == "lines" else 2), **common)
    return forms.CharField(max_length=opt.max_length, widget=forms.TextInput(attrs=attrs) if attrs else None,
                           **common)


def _spec_fields() -> dict[str, forms.Field]:
    fields: dict[str, forms.Field] = {}
    for opt in EDITOR_OPTIONS:
        fields[opt.form_field] = _editor_field(opt)
        if opt.form_field in SECRET_CLEAR:
            fields[SECRET_CLEAR[opt.form_field]] = forms.BooleanField(label="Remove the stored key", required=False)
    return fields


#: a form with the field of every layer option the editor shows (and each secret's clear box)
SpecFields = type("SpecFields", (forms.Form,), _spec_fields())
