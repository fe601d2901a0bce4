"""The PAL editor form: every option of a PAL, grouped by layer, as plain HTML fields.

The form does no business validation of its own. ``to_data()`` turns the fields into the
same ``data`` dict the REST API accepts and the view checks it as the API does
(``pals.api.serializers.pal_input``) and hands it to ``pals.services``; their errors (field
paths such as ``layers.llm.base_url``) come back through ``add_service_errors()`` and are shown
beside the field they name. So a rule the API enforces blocks the form the same way, because
both run the same code.

The layer options' fields (label, help, kind, limits, which are folded under "more options")
are generated from the layer spec, ``conversations.realtime.layerspec``, the same table the
REST serializers and the OpenAPI page come from; the turn-taking choices are labelled with the
seconds that ``conversations.realtime.config`` actually uses.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import ValidationError as DRFValidationError

from conversations.realtime import layerspec as spec
from conversations.realtime.config import LEVEL_TABLES, IdlePolicy, InterruptPolicy, TurnWaits
from pals.models import Pal

# --------------------------------------------------------------------------- help and labels


def _s(ms: float) -> str:
    return f"{ms / 1000:g} s"


def patience_choices(waits: Mapping[str, TurnWaits]) -> list[tuple[str, str]]:
    """Short labels with the range of seconds; the full table is in ``patience_help()``."""
    words = {"low": "Low — snappy", "medium": "Medium — balanced", "high": "High — patient"}
    return [("", "Default (medium)")] + [
        (level, f"{words[level]} ({_s(w.complete_ms)}–{_s(w.incomplete_ms)})") for level, w in waits.items()]


def patience_help(waits: Mapping[str, TurnWaits]) -> str:
    rows = "; ".join(f"{level} {w.complete_ms / 1000:g} / {w.neutral_ms / 1000:g} / {w.incomplete_ms / 1000:g} s"
                     for level, w in waits.items())
    return ("How long the agent waits after you stop speaking before it answers — after a finished sentence / "
            f"otherwise / when you stop mid-thought: {rows}.")


def interruptibility_choices(policies: Mapping[str, InterruptPolicy]) -> list[tuple[str, str]]:
    words = {"low": "Low — hard to interrupt", "medium": "Medium", "high": "High — stops at once"}
    out = [("", "Default (medium)")]
    for level, p in policies.items():
        rule = _s(p.min_speech_ms) + (f" + {p.min_words} word{'s' if p.min_words > 1 else ''}" if p.min_words else "")
        out.append((level, f"{words[level]} ({rule})"))
    return out


def interruptibility_help(policies: Mapping[str, InterruptPolicy]) -> str:
    parts = []
    for level, p in policies.items():
        text = f"{level}: {_s(p.min_speech_ms)} of your speech"
        if p.min_words:
            text += f" and {p.min_words} real word{'s' if p.min_words > 1 else ''}"
            if p.force_ms:
                text += f" (or {_s(p.force_ms)} of speech alone)"
        parts.append(text)
    return ("How much of your speech over the agent stops it — " + "; ".join(parts)
            + ". Backchannels such as “mm-hm” never count as words.")


def idle_choices(policies: Mapping[str, IdlePolicy]) -> list[tuple[str, str]]:
    return [("", "Default (off)"), ("off", "Off — never speaks first")] + [
        (level, f"{level.capitalize()} (after {p.after_s:g} s, up to {p.max_nudges}×)") for level, p in policies.items()]


def idle_help(policies: Mapping[str, IdlePolicy]) -> str:
    rows = "; ".join(f"{level}: after {p.after_s:g} s, at most {p.max_nudges} time{'s' if p.max_nudges > 1 else ''}"
                     for level, p in policies.items())
    return ("Whether the agent speaks up when you stay silent, with a short line that fits the conversation — "
            f"{rows} until you speak again. Not while it waits for its wake phrase.")


SENSITIVITY_LABELS = {
    "": "Not set (use conversational flow)", "superlow": "Super low", "verylow": "Very low", "low": "Low",
    "medium": "Medium", "high": "High", "auto": "Auto",
}
TRISTATE = [("", "Default"), ("true", "On"), ("false", "Off")]
PERCEPTION_LABELS = {
    "": "Default (embedded MediaPipe)",
    "mediapipe": "Embedded (MediaPipe, on this machine)",
    "vision-llm": "A vision model at an OpenAI-compatible endpoint",
    "off": "Off (the agent does not look at the camera)",
}
TURN_MODEL_LABELS = {
    "": "Default (smart turn)",
    "smart-turn": "Smart turn — a trained model hears whether you sound finished, and the words are checked",
    "vad": "Pause length only",
}
def voice_choices() -> list[tuple[str, str]]:
    """The editor's voice list: the voices installed here (``frontdoor.voice_catalogue``)."""
    from conversations.realtime.frontdoor import voice_catalogue

    return [(v["voice_id"], v["name"] + (f" (engine {v['engine']})" if v["engine"] != "espeak-ng" else ""))
            for v in voice_catalogue()]


LANGUAGE_CHOICES = [
    ("english", "English"), ("multilingual", "Detect automatically (multilingual)"), ("spanish", "Spanish"),
    ("french", "French"), ("german", "German"), ("italian", "Italian"), ("portuguese", "Portuguese"),
    ("dutch", "Dutch"), ("polish", "Polish"), ("swedish", "Swedish"), ("hindi", "Hindi"),
    ("japanese", "Japanese"), ("chinese", "Chinese"),
]


def _engines(kind: str) -> list[dict[str, Any]]:
    from conversations.realtime.engines.registry import available_engines

    return list(available_engines().get(kind, []))


def _engine_choices(kind: str, *, embedded_only: bool = False) -> list[tuple[str, str]]:
    out = [("", "Default")]
    for e in _engines(kind):
        if embedded_only and not e.get("embedded", True):
            continue
        label = e["name"] + (" (default)" if e.get("default") else "")
        if e.get("description"):
            label += f" — {e['description']}"
        out.append((e["name"], label))
    return out


# --------------------------------------------------------------------------- field map


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

#: form-only fields a layer's section shows first (the LLM's source and model are one option, shown as three)
_SECTION_EXTRAS = {"llm": ("llm_source", "llm_embedded_model", "llm_model")}
#: editor sections in display order: (anchor, title, fields)
#: each layer's section anchor in the editor
SECTION_OF_LAYER = {"conversational_flow": "flow", "stt": "stt", "llm": "llm", "tts": "tts", "perception": "perception"}
SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("identity", "Identity", ("pal_name", "pipeline_mode", "system_prompt", "context", "greeting", "default_face_id")),
) + tuple(
    (SECTION_OF_LAYER[layer], spec.LAYER_TITLES[layer],
     _SECTION_EXTRAS.get(layer, ()) + tuple(o.form_field for o in EDITOR_OPTIONS if o.layer == layer))
    # a layer whose options are all API-only (transport) has no section
    for layer in spec.LAYERS if layer in _SECTION_EXTRAS or any(o.layer == layer for o in EDITOR_OPTIONS)
) + (
    ("knowledge", "Knowledge and guardrails", ("document_ids", "document_tags", "objectives_id", "guardrail_ids",
                                                      "guardrails_id")),
)
SECRET_CLEAR = {o.form_field: o.form_field + "_clear" for o in EDITOR_OPTIONS if o.kind == "secret"}


def _ta(rows: int = 3, **attrs) -> forms.Textarea:
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
        return forms.CharField(widget=_ta(6 if opt.kind == "tools" else 2, **JSON_ATTRS), **common)
    if kind == "lines" or opt.kind == "text":
        return forms.CharField(widget=_ta(3 if kind == "lines" else 2), **common)
    return forms.CharField(max_length=opt.max_length, widget=forms.TextInput(attrs=attrs) if attrs else None,
                           **common)


def _spec_fields() -> dict[str, forms.Field]:
    fields: dict[str, forms.Field] = {}
    for opt in EDITOR_OPTIONS:
        fields[opt.form_field] = _editor_field(opt)
        if opt.form_field in SECRET_CLEAR:
            fields[SECRET_CLEAR[opt.form_field]] = forms.BooleanField(label="Remove the stored key", required=False)
    return fields


_SpecFields = type("_SpecFields", (forms.Form,), _spec_fields())


class PalEditorForm(_SpecFields):
    """Every PAL option as a field (the layer options generated from the layer spec); see the
    module docstring for how it is validated."""

    # identity
    pal_name = forms.CharField(label="Name", max_length=200, required=False,
                               help_text="What you call this agent. Shown in lists; the agent does not hear it.")
    pipeline_mode = forms.ChoiceField(
        label="Pipeline mode", choices=[("full", "Full — listens, thinks and answers"),
                                        ("echo", "Echo — speaks exactly what your app sends (no STT or LLM)")],
        initial="full", help_text="Echo mode is for apps that bring their own brain: they send text and the face says it.")
    system_prompt = forms.CharField(label="System prompt", required=False, widget=_ta(6),
                                    help_text="Who the agent is and how it behaves. Required in full mode. "
                                              "Keep replies short: they are spoken.")
    context = forms.CharField(label="Context", required=False, widget=_ta(4),
                              help_text="Background facts the agent can use (appended to the prompt).")
    greeting = forms.CharField(label="Greeting", required=False, widget=_ta(2),
                               help_text="Spoken first when a conversation starts (a conversation's custom_greeting "
                                         "replaces it). Never interruptible.")
    default_face_id = forms.ChoiceField(label="Default face", required=False,
                                        help_text="The face used when a conversation names none.")
    # knowledge
    document_ids = forms.CharField(label="Document ids", required=False,
                                   help_text="Comma-separated ids of documents the agent may consult.")
    document_tags = forms.CharField(label="Document tags", required=False,
                                    help_text="Comma-separated tags: documents with these tags are consulted.")
    # objectives and guardrails: the account's own (choices set in __init__)
    objectives_id = forms.ChoiceField(label="Objectives", required=False, help_text=(
        "The steps the agent works through in a call, in order, collecting what each asks for."))
    guardrail_ids = forms.MultipleChoiceField(label="Guardrails", required=False, help_text=(
        "Rules the agent keeps: a reply that breaks a verbal one is not spoken; visual ones are checked on "
        "what the camera shows."))
    guardrails_id = forms.ChoiceField(label="Guardrail set (legacy)", required=False, help_text=(
        "Every guardrail of a set made with the legacy set API."))
    # the LLM's model: one option, shown as where it runs plus an embedded choice or an endpoint's model name
    llm_source = forms.ChoiceField(
        label="Where the agent thinks", widget=forms.RadioSelect, initial="embedded",
        choices=[("embedded", "Embedded model on this server"),
                 ("endpoint", "An OpenAI-compatible endpoint (vLLM, llama.cpp server, a cloud API)")])
    llm_embedded_model = forms.ChoiceField(label="Embedded model", required=False)
    llm_model = forms.CharField(label="Model name", required=False, max_length=200,
                                widget=forms.TextInput(attrs={"placeholder": "gpt-4o-mini", "spellcheck": "false"}),
                                help_text="The model name the endpoint expects.")

    def __init__(self, *args, faces: Iterable = (), pal: Pal | None = None,
                 account: Any = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pal = pal
        self._link_choices(account if account is not None else getattr(pal, "account", None))
        #: voice settings other than speed (engine-specific, no field of their own): kept as they are
        self.extra_voice_settings: dict[str, Any] = {}
        #: secrets stored on the PAL, masked ("****abcd"), by form field
        self.stored_secrets: dict[str, str] = {}
        #: errors about a whole layer (e.g. an unknown option), by section anchor
        self.section_errors: dict[str, list[str]] = {}
        # choices and help that depend on the numbers the pipeline uses and the engines installed here
        for (layer, name), table in LEVEL_TABLES.items():
            choices, help_text = _DESCRIBE_LEVELS[type(next(iter(table.values())))]
            field = self.fields[spec.get(layer, name).form_field]
            field.choices = choices(table)
            field.help_text = help_text(table)
        for layer, name in (("stt", "stt_engine"), ("tts", "tts_engine")):
            self.fields[spec.get(layer, name).form_field].choices = _engine_choices(layer)
        embedded = [c for c in _engine_choices("llm", embedded_only=True) if c[0]]
        self.fields["llm_embedded_model"].choices = embedded
        self.fields["llm_embedded_model"].help_text = "Runs on this server's CPU; nothing leaves the machine."
        face_choices = [("", "None — choose one per conversation")]
        for face in faces:
            kind = "stock" if face.account_id is None else "yours"
            status = "" if face.status == "ready" else f", {face.status}"
            face_choices.append((face.id, f"{face.face_name or face.id} ({kind}{status})"))
        self.fields["default_face_id"].choices = face_choices
        if pal is not None:
            self._load(pal)

    def _link_choices(self, account: Any) -> None:
        """The account's objective sets and guardrails, as the choices of the link fields."""
        from guardrails.selectors import guardrail_list, guardrail_set_list
        from objectives.selectors import objective_set_list
        from objectives.services import objectives_representation

        sets, guardrails, guardrail_sets = [], [], []
        if account is not None:
            sets = list(objective_set_list(account=account))
            guardrails = list(guardrail_list(account=account))
            guardrail_sets = list(guardrail_set_list(account=account))
        objectives = [("", "None")]
        for objective_set in sets:
            doc = objectives_representation(objective_set)
            objectives.append((objective_set.id, f"{doc['objective_name']} ({len(doc['data'])} step"
                                                 f"{'s' if len(doc['data']) != 1 else ''}, {objective_set.id})"))
        self.fields["objectives_id"].choices = objectives
        self.fields["guardrail_ids"].choices = [
            (str(g.uuid), g.guardrail_name + (f" (set {g.guardrail_set.name or g.guardrail_set_id})"
                                              if g.guardrail_set_id else "")) for g in guardrails]
        self.fields["guardrail_ids"].widget.attrs["size"] = str(min(8, max(3, len(guardrails))))
        self.fields["guardrails_id"].choices = [("", "None")] + [
            (s.id, f"{s.name or s.id} ({len(s.guardrails.all())} guardrails)") for s in guardrail_sets]

    # ----------------------------------------------------------------------- PAL -> fields
    def _load(self, pal: Pal) -> None:
        from pals.services import pal_representation

        doc = pal_representation(pal, mask=True)
        initial: dict[str, Any] = {}
        for opt in OPTIONS:
            value = _get(doc, opt.path)
            if opt.kind == "secret":
                if value:
                    self.stored_secrets[opt.field] = value
                continue
            if value is None:
                continue
            initial[opt.field] = _to_field(value, opt.kind)
        llm = doc["layers"].get("llm", {})
        if llm.get("base_url"):
            initial["llm_source"] = "endpoint"
            initial["llm_model"] = llm.get("model", "")
        else:
            initial["llm_source"] = "embedded"
            initial["llm_embedded_model"] = llm.get("model", "")
        settings = dict(doc["layers"].get("tts", {}).get("voice_settings") or {})
        settings.pop("speed", None)
        settings.pop("region", None)  # both have fields of their own
        self.extra_voice_settings = settings
        if "speculative_inference" not in llm:
            initial["llm_speculative_inference"] = True
        if doc.get("default_face_id") and doc["default_face_id"] not in dict(self.fields["default_face_id"].choices):
            self.fields["default_face_id"].choices += [(doc["default_face_id"], doc["default_face_id"])]
        self.initial.update(initial)

    # ----------------------------------------------------------------------- fields -> data
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for opt in OPTIONS:
            if opt.kind == "json" and cleaned.get(opt.field):
                try:
                    cleaned[opt.field] = json.loads(cleaned[opt.field])
                except ValueError as exc:
                    self.add_error(opt.field, f"not valid JSON: {exc}")
        return cleaned

    def to_data(self) -> dict[str, Any]:
        """The PAL as the API's ``data`` dict (blank fields left out, so defaults apply)."""
        c = self.cleaned_data
        data: dict[str, Any] = {"layers": {}}
        for opt in OPTIONS:
            value = c.get(opt.field)
            if opt.kind == "secret":
                if c.get(SECRET_CLEAR[opt.field]):
                    continue
                if not value and opt.field in self.stored_secrets:
                    # pal_update keeps the stored secret when it gets back the masked value
                    value = self.stored_secrets[opt.field]
            converted = _from_field(value, opt.kind)
            if converted is _OMIT:
                continue
            if opt.path[0] == "layers" and opt.path[1] == "llm" and c.get("llm_source") != "endpoint" \
                    and opt.path[2] in _ENDPOINT_ONLY:
                continue  # endpoint-only options are not stored for the embedded model
            _set(data, opt.path, converted)
        if c.get("llm_source") == "endpoint":
            if c.get("llm_model"):
                _set(data, ("layers", "llm", "model"), c["llm_model"].strip())
        elif c.get("llm_embedded_model"):
            _set(data, ("layers", "llm", "model"), c["llm_embedded_model"])
        if self.extra_voice_settings:
            settings = data["layers"].setdefault("tts", {}).setdefault("voice_settings", {})
            for key, value in self.extra_voice_settings.items():
                settings.setdefault(key, value)
        data["layers"] = {k: v for k, v in data["layers"].items() if v}
        for key in ("default_face_id", "objectives_id", "guardrails_id"):
            if not data.get(key):
                data[key] = None
        return data

    def layer_data(self, layer: str) -> dict[str, Any]:
        """One layer of ``to_data()`` (for "test connection" and "preview voice")."""
        return self.to_data()["layers"].get(layer, {})

    # ----------------------------------------------------------------------- service errors -> fields
    def add_service_errors(self, exc: Exception) -> None:
        """Show a service's error beside the field it names (or at the top of its section)."""
        for path, message in service_error_items(exc):
            field = _field_for(path)
            if field and field in self.fields:
                self.add_error(field, message)
                continue
            parts = path.split(".")
            if len(parts) >= 2 and parts[0] == "layers" and parts[1] in SECTION_OF_LAYER:
                section = SECTION_OF_LAYER[parts[1]]
                self.section_errors.setdefault(section, []).append(message)
                self.add_error(None, f"{_layer_title(parts[1])}: {message}")
                continue
            self.add_error(None, f"{path}: {message}" if path else message)

    # ----------------------------------------------------------------------- template helpers
    def sections(self) -> list[dict[str, Any]]:
        """The editor's sections in order, each with its main and advanced fields."""
        out = []
        for anchor, title, names in SECTIONS:
            fields = [self[name] for name in names]
            errors = self.section_errors.get(anchor, [])
            main = [self._entry(f) for f in fields if f.name not in ADVANCED]
            advanced = [self._entry(f) for f in fields if f.name in ADVANCED]
            out.append({"anchor": anchor, "title": title, "intro": SECTION_INTROS.get(anchor, ""),
                        "main": main, "advanced": advanced, "errors": errors,
                        "advanced_title": ADVANCED_TITLES.get(anchor, "More options"),
                        "has_errors": bool(errors) or any(f.errors for f in fields),
                        "advanced_open": any(e["f"].errors for e in advanced)})
        return out

    def _entry(self, bound: forms.BoundField) -> dict[str, Any]:
        """What the template needs to draw one field."""
        widget = bound.field.widget
        control = SHOW_WHEN.get(bound.name)
        return {
            "f": bound,
            "kind": "radio" if isinstance(widget, forms.RadioSelect)
            else "check" if isinstance(widget, forms.CheckboxInput) else "input",
            "wide": isinstance(widget, (forms.Textarea, forms.RadioSelect)),
            "show_when": f"{control[0]}={control[1]}" if control else "",
            "stored_secret": self.stored_secrets.get(bound.name, ""),
            "clear": self[SECRET_CLEAR[bound.name]] if bound.name in SECRET_CLEAR else None,
        }


#: fields shown folded under "More options" (legacy names, cloud-provider settings)
ADVANCED = frozenset(o.form_field for o in EDITOR_OPTIONS if o.advanced)
#: how the editor words the levels of an option (config.LEVEL_TABLES), by what a level is
_DESCRIBE_LEVELS = {
    TurnWaits: (patience_choices, patience_help),
    InterruptPolicy: (interruptibility_choices, interruptibility_help),
    IdlePolicy: (idle_choices, idle_help),
}
ADVANCED_TITLES = {
    "stt": "Cloud engines and legacy options (hosted API names)",
    "llm": "Request details and sampling",
    "tts": "Cloud voice providers",
    "perception": "Visual tools and vision endpoint",
    "flow": "Turn detection details",
}
SECTION_INTROS = {
    "identity": "Who the agent is and what it says first. The system prompt matters most.",
    "flow": "When the agent answers, and how easily you can talk over it.",
    "stt": "How the agent hears you. The language is chosen per conversation (Talk now asks; the API takes "
           "properties.language).",
    "llm": "How the agent thinks: a model running on this server, or any OpenAI-compatible endpoint.",
    "tts": "How the agent sounds. Press Preview voice to hear the current settings before you save.",
    "perception": "What the agent notices through the camera, and what it reports at the end of a call.",
    "knowledge": "The documents the agent answers from, the objectives it works through and the guardrails it "
                 "keeps (made on the Knowledge, Objectives and Guardrails pages).",
}
#: fields that show only for one choice of another field: field -> (controlling field, value)
_ENDPOINT_ONLY = ("base_url", "api_key", "headers", "extra_body", "default_query")
SHOW_WHEN = {
    "llm_embedded_model": ("llm_source", "embedded"),
    "llm_model": ("llm_source", "endpoint"),
    **{spec.get("llm", name).form_field: ("llm_source", "endpoint") for name in _ENDPOINT_ONLY},
}


# --------------------------------------------------------------------------- helpers

_OMIT = object()


def _get(doc: dict, path: tuple[str, ...]) -> Any:
    node: Any = doc
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _set(doc: dict, path: tuple[str, ...], value: Any) -> None:
    node = doc
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def _to_field(value: Any, kind: str) -> Any:
    if kind == "lines":
        return "\n".join(str(v) for v in value) if isinstance(value, list) else value
    if kind == "csv":
        return ", ".join(str(v) for v in value) if isinstance(value, list) else value
    if kind == "json":
        return json.dumps(value, indent=2, ensure_ascii=False)
    if kind == "tristate":
        return "true" if value is True else "false" if value is False else ""
    if kind == "multi":
        return list(value) or None
    return value


def _from_field(value: Any, kind: str) -> Any:
    if kind in ("str", "choice", "secret"):
        return value.strip() if isinstance(value, str) and value.strip() else _OMIT
    if kind == "lines":
        items = [line.strip() for line in (value or "").splitlines() if line.strip()]
        return items or _OMIT
    if kind == "csv":
        items = [part.strip() for part in (value or "").split(",") if part.strip()]
        return items
    if kind == "multi":
        return list(value or [])
    if kind == "json":
        return _OMIT if value in (None, "") else value
    if kind == "tristate":
        return {"true": True, "false": False}.get(value or "", _OMIT)
    if kind == "bool_on":  # default off: stored only when on
        return True if value else _OMIT
    if kind == "bool_off":  # default on: stored only when off
        return _OMIT if value else False
    if kind in ("float", "int"):
        return _OMIT if value is None else value
    raise ValueError(kind)


def _layer_title(layer: str) -> str:
    return spec.LAYER_TITLES.get(layer, layer)


def _field_for(path: str) -> str | None:
    while path:
        if path in BY_PATH:
            return BY_PATH[path]
        if "." not in path:
            return None
        path = path.rsplit(".", 1)[0]
        if path.count(".") < 2 and path.startswith("layers"):
            return None  # a whole layer: shown at the top of its section
    return None


_PREFIXED = re.compile(r"^([a-z_]+(?:\.[a-z_0-9]+)*)(?::| is | must )\s*(.*)$")


def service_error_items(exc: Exception) -> list[tuple[str, str]]:
    """(dotted path, message) pairs from an InvalidError or a DRF ValidationError (field by field),
    a Django ValidationError or an ApplicationError (whose message may start with ``field: ...``)."""
    from cvi_site.domain import ApplicationError, InvalidError

    if isinstance(exc, InvalidError):
        return list(_walk(exc.errors, ""))
    if isinstance(exc, DRFValidationError):
        return list(_walk(exc.detail, ""))
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return [(k, " ".join(v)) for k, v in exc.message_dict.items()]
        return [("", m) for m in exc.messages]
    if isinstance(exc, ApplicationError):
        out = []
        for part in exc.message.split("; "):
            m = _PREFIXED.match(part)
            if m and m.group(1) in BY_PATH:
                rest = part[len(m.group(1)):].lstrip(": ")
                out.append((m.group(1), rest))
            else:
                out.append(("", part))
        return out
    return [("", str(exc))]


def _walk(detail: Any, prefix: str) -> Iterable[tuple[str, str]]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            key = str(key)
            if key == "non_field_errors":
                yield from _walk(value, prefix)
            else:
                yield from _walk(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(detail, (list, tuple)):
        for item in detail:
            yield from _walk(item, prefix)
    else:
        yield prefix, str(detail)


class TalkNowForm(forms.Form):
    """Start a conversation with a PAL from the browser (the API's create, with its rules)."""

    face_id = forms.ChoiceField(label="Face", required=False)
    language = forms.ChoiceField(label="Language", choices=LANGUAGE_CHOICES, initial="english", required=False,
                                 help_text="What the agent listens for and speaks.")
    conversation_name = forms.CharField(label="Conversation name", required=False, max_length=200)

    def __init__(self, *args, faces: Iterable = (), pal: Pal | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from cvi_site.ids import STOCK_FACE_ID

        ready = [f for f in faces if f.status == "ready"]
        self.fields["face_id"].choices = [(f.id, f"{f.face_name or f.id}{' (stock)' if f.account_id is None else ''}")
                                          for f in ready]
        ready_ids = {f.id for f in ready}
        # preset to a face that can talk: the PAL's default when it is ready, else the stock face
        if pal is not None and pal.default_face_id in ready_ids:
            self.fields["face_id"].initial = pal.default_face_id
        elif STOCK_FACE_ID in ready_ids:
            self.fields["face_id"].initial = STOCK_FACE_ID
        #: the face used when none is chosen (a PAL without a default face talks through the stock face)
        self.fallback_face_id = self.fields["face_id"].initial or ""

    def to_data(self, pal: Pal) -> dict[str, Any]:
        c = self.cleaned_data
        data: dict[str, Any] = {"pal_id": pal.id, "properties": {"language": c.get("language") or "english"}}
        face_id = c.get("face_id") or (self.fallback_face_id if not pal.default_face_id else "")
        if face_id:
            data["face_id"] = face_id
        if c.get("conversation_name"):
            data["conversation_name"] = c["conversation_name"]
        return data
