"""The PAL Maker's forms: the PAL editor (``PalEditorForm``, every option of a PAL as plain HTML
fields, grouped by layer) with its mapping between the PAL's data and the fields, and "talk now".

The form does no business validation of its own. ``to_data()`` turns the fields into the
same ``data`` dict the REST API accepts and the view checks it as the API does
(``pals.api.serializers.pal_input``) and hands it to ``pals.services``; their errors (field
paths such as ``layers.llm.base_url``) come back through ``add_service_errors()`` and are shown
beside the field they name. So a rule the API enforces blocks the form the same way, because
both run the same code.

The layer options' fields (label, help, kind, limits) are generated from the layer spec,
``conversations.realtime.layerspec``, the same table the REST serializers and the OpenAPI page
come from: the field map is ``pals.editor_fields``, the sections and "more options" folds are
``pals.editor_layout``, and the labels and choices not in the spec are ``pals.editor_text``.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django import forms

from conversations.realtime import layerspec as spec
from conversations.realtime.config import LEVEL_TABLES
from pals.editor_fields import BY_PATH, OPTIONS, SECRET_CLEAR, SpecFields, textarea
from pals.editor_layout import (ADVANCED, ADVANCED_TITLES, ENDPOINT_ONLY, SECTION_INTROS, SECTION_OF_LAYER,
                                SECTIONS, SHOW_WHEN)
from pals.editor_text import DESCRIBE_LEVELS, LANGUAGE_CHOICES, engine_choices
from pals.models import Pal
from pals.service_errors import service_error_items


class PalEditorForm(SpecFields):
    """Every PAL option as a field (the layer options generated from the layer spec); see the
    module docstring for how it is validated."""

    # identity
    pal_name = forms.CharField(label="Name", max_length=200, required=False,
                               help_text="What you call this agent. Shown in lists; the agent does not hear it.")
    pipeline_mode = forms.ChoiceField(
        label="Pipeline mode", choices=[("full", "Full — listens, thinks and answers"),
                                        ("echo", "Echo — speaks exactly what your app sends (no STT or LLM)")],
        initial="full", help_text="Echo mode is for apps that bring their own brain: they send text and the face says it.")
    system_prompt = forms.CharField(label="System prompt", required=False, widget=textarea(6),
                                    help_text="Who the agent is and how it behaves. Required in full mode. "
                                              "Keep replies short: they are spoken.")
    context = forms.CharField(label="Context", required=False, widget=textarea(4),
                              help_text="Background facts the agent can use (appended to the prompt).")
    greeting = forms.CharField(label="Greeting", required=False, widget=textarea(2),
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
            choices, help_text = DESCRIBE_LEVELS[type(next(iter(table.values())))]
            field = self.fields[spec.get(layer, name).form_field]
            field.choices = choices(table)
            field.help_text = help_text(table)
        for layer, name in (("stt", "stt_engine"), ("tts", "tts_engine")):
            self.fields[spec.get(layer, name).form_field].choices = engine_choices(layer)
        embedded = [c for c in engine_choices("llm", embedded_only=True) if c[0]]
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
                    and opt.path[2] in ENDPOINT_ONLY:
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


# --------------------------------------------------------------------------- data mapping

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


# --------------------------------------------------------------------------- service errors -> fields


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


# --------------------------------------------------------------------------- talk now


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
