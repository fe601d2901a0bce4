"""The PAL editor form: every option of a PAL, grouped by layer, as plain HTML fields.

The form does no business validation of its own. ``to_data()`` turns the fields into the
same ``data`` dict the REST API accepts and the view hands it to ``pals.services``; the
service's errors (DRF detail paths such as ``layers.llm.base_url``) come back through
``add_service_errors()`` and are shown beside the field they name. So a rule the API
enforces blocks the form the same way, because both run the same code.

Help texts come from the layer serializers in ``pals.layers`` (the text the OpenAPI page
shows); the turn-taking choices are labelled with the seconds that
``conversations.realtime.config`` actually uses.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import ValidationError as DRFValidationError

from pals import layers as L
from pals.models import Pal

# --------------------------------------------------------------------------- help and labels


def _help(serializer: type, field: str) -> str:
    """The layer serializer's help text for ``field`` (markdown backticks dropped)."""
    text = serializer._declared_fields[field].help_text or ""  # noqa: SLF001 - the one definition of the docs
    return text.replace("`", "")


def _s(ms: float) -> str:
    return f"{ms / 1000:g} s"


def patience_choices() -> list[tuple[str, str]]:
    """Short labels with the range of seconds; the full table is in ``patience_help()``."""
    from conversations.realtime.config import PATIENCE_WAITS

    words = {"low": "Low — snappy", "medium": "Medium — balanced", "high": "High — patient"}
    return [("", "Default (medium)")] + [
        (level, f"{words[level]} ({_s(w.complete_ms)}–{_s(w.incomplete_ms)})") for level, w in PATIENCE_WAITS.items()]


def patience_help() -> str:
    from conversations.realtime.config import PATIENCE_WAITS

    rows = "; ".join(f"{level} {w.complete_ms / 1000:g} / {w.neutral_ms / 1000:g} / {w.incomplete_ms / 1000:g} s"
                     for level, w in PATIENCE_WAITS.items())
    return ("How long the agent waits after you stop speaking before it answers — after a finished sentence / "
            f"otherwise / when you stop mid-thought: {rows}.")


def interruptibility_choices() -> list[tuple[str, str]]:
    from conversations.realtime.config import INTERRUPTIBILITY

    words = {"low": "Low — hard to interrupt", "medium": "Medium", "high": "High — stops at once"}
    out = [("", "Default (medium)")]
    for level, p in INTERRUPTIBILITY.items():
        rule = _s(p.min_speech_ms) + (f" + {p.min_words} word{'s' if p.min_words > 1 else ''}" if p.min_words else "")
        out.append((level, f"{words[level]} ({rule})"))
    return out


def interruptibility_help() -> str:
    from conversations.realtime.config import INTERRUPTIBILITY

    parts = []
    for level, p in INTERRUPTIBILITY.items():
        text = f"{level}: {_s(p.min_speech_ms)} of your speech"
        if p.min_words:
            text += f" and {p.min_words} real word{'s' if p.min_words > 1 else ''}"
            if p.force_ms:
                text += f" (or {_s(p.force_ms)} of speech alone)"
        parts.append(text)
    return ("How much of your speech over the agent stops it — " + "; ".join(parts)
            + ". Backchannels such as “mm-hm” never count as words.")


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
EMBEDDED_VOICES = [
    ("en-us", "English (US)"), ("en-gb", "English (UK)"), ("en-gb-x-rp", "English (UK, received pronunciation)"),
    ("en-gb-scotland", "English (Scotland)"), ("en-us+f3", "English (US), female variant"),
    ("en+m3", "English (UK), male variant"), ("es", "Spanish"), ("es-419", "Spanish (Latin America)"),
    ("fr", "French"), ("de", "German"), ("it", "Italian"), ("pt-br", "Portuguese (Brazil)"),
    ("nl", "Dutch"), ("pl", "Polish"), ("sv", "Swedish"), ("hi", "Hindi"), ("ja", "Japanese"),
    ("cmn", "Chinese (Mandarin)"),
]
PIPER_VOICE_LABELS = {"en_US-joe-medium": "Joe, US English, natural male voice (engine piper)"}


def voice_choices() -> list[tuple[str, str]]:
    """The embedded voices for the editor's voice list: eSpeak NG's, then the Piper voices
    installed here (choose the piper engine for those)."""
    from conversations.realtime.engines.registry import piper_voices

    return EMBEDDED_VOICES + [(v, PIPER_VOICE_LABELS.get(v, f"{v} (engine piper)")) for v in piper_voices()]


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
    kind: str = "str"  # str, choice, lines, csv, json, bool_on, bool_off, tristate, float, int, secret


OPTIONS: tuple[Option, ...] = (
    Option("pal_name", ("pal_name",)),
    Option("pipeline_mode", ("pipeline_mode",), "choice"),
    Option("system_prompt", ("system_prompt",)),
    Option("context", ("context",)),
    Option("greeting", ("greeting",)),
    Option("default_face_id", ("default_face_id",), "choice"),
    Option("document_ids", ("document_ids",), "csv"),
    Option("document_tags", ("document_tags",), "csv"),
    Option("objectives_id", ("objectives_id",)),
    Option("guardrail_ids", ("guardrail_ids",), "csv"),
    # conversational flow
    Option("cf_turn_detection_model", ("layers", "conversational_flow", "turn_detection_model"), "choice"),
    Option("cf_turn_taking_patience", ("layers", "conversational_flow", "turn_taking_patience"), "choice"),
    Option("cf_replica_interruptibility", ("layers", "conversational_flow", "replica_interruptibility"), "choice"),
    Option("cf_voice_isolation", ("layers", "conversational_flow", "voice_isolation"), "choice"),
    Option("cf_wake_phrase", ("layers", "conversational_flow", "wake_phrase")),
    Option("cf_idle_engagement", ("layers", "conversational_flow", "idle_engagement"), "choice"),
    # speech to text
    Option("stt_engine", ("layers", "stt", "stt_engine"), "choice"),
    Option("stt_hotwords", ("layers", "stt", "hotwords")),
    Option("stt_pause_sensitivity", ("layers", "stt", "participant_pause_sensitivity"), "choice"),
    Option("stt_interrupt_sensitivity", ("layers", "stt", "participant_interrupt_sensitivity"), "choice"),
    Option("stt_smart_turn_detection", ("layers", "stt", "smart_turn_detection"), "tristate"),
    # language model (source/model handled in to_data)
    Option("llm_base_url", ("layers", "llm", "base_url")),
    Option("llm_api_key", ("layers", "llm", "api_key"), "secret"),
    Option("llm_headers", ("layers", "llm", "headers"), "json"),
    Option("llm_extra_body", ("layers", "llm", "extra_body"), "json"),
    Option("llm_default_query", ("layers", "llm", "default_query"), "json"),
    Option("llm_speculative_inference", ("layers", "llm", "speculative_inference"), "bool_off"),
    Option("llm_tools", ("layers", "llm", "tools"), "json"),
    Option("llm_temperature", ("layers", "llm", "temperature"), "float"),
    Option("llm_max_tokens", ("layers", "llm", "max_tokens"), "int"),
    # text to speech
    Option("tts_engine", ("layers", "tts", "tts_engine"), "choice"),
    Option("tts_voice_id", ("layers", "tts", "voice_id")),
    Option("tts_external_voice_id", ("layers", "tts", "external_voice_id")),
    Option("tts_api_key", ("layers", "tts", "api_key"), "secret"),
    Option("tts_model_name", ("layers", "tts", "tts_model_name")),
    Option("tts_base_url", ("layers", "tts", "base_url")),
    Option("tts_region", ("layers", "tts", "voice_settings", "region")),
    Option("tts_speed", ("layers", "tts", "voice_settings", "speed"), "float"),
    Option("tts_emotion_control", ("layers", "tts", "tts_emotion_control"), "tristate"),
    Option("tts_pronunciation_dictionary_id", ("layers", "tts", "pronunciation_dictionary_id")),
    # perception
    Option("pc_perception_model", ("layers", "perception", "perception_model"), "choice"),
    Option("pc_base_url", ("layers", "perception", "base_url")),
    Option("pc_model", ("layers", "perception", "model")),
    Option("pc_api_key", ("layers", "perception", "api_key"), "secret"),
    Option("pc_visual_awareness_queries", ("layers", "perception", "visual_awareness_queries"), "lines"),
    Option("pc_perception_analysis_queries", ("layers", "perception", "perception_analysis_queries"), "lines"),
    Option("pc_visual_tool_prompt", ("layers", "perception", "visual_tool_prompt")),
    Option("pc_visual_tools", ("layers", "perception", "visual_tools"), "json"),
    Option("pc_pause_when_absent", ("layers", "perception", "pause_when_absent"), "bool_on"),
    Option("pc_absent_counts_as_left", ("layers", "perception", "absent_counts_as_left"), "bool_on"),
)
BY_PATH = {".".join(o.path): o.field for o in OPTIONS}
# The LLM model name is one option shown as two fields (embedded choice / endpoint model).
BY_PATH["layers.llm.model"] = "llm_model"
BY_PATH["layers.tts.voice_settings"] = "tts_speed"

#: editor sections in display order: (anchor, title, fields)
SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("identity", "Identity", ("pal_name", "pipeline_mode", "system_prompt", "context", "greeting", "default_face_id")),
    ("flow", "Conversational flow", ("cf_turn_taking_patience", "cf_replica_interruptibility", "cf_turn_detection_model",
                                     "cf_idle_engagement", "cf_voice_isolation", "cf_wake_phrase")),
    ("stt", "Speech to text", ("stt_engine", "stt_hotwords", "stt_pause_sensitivity", "stt_interrupt_sensitivity",
                               "stt_smart_turn_detection")),
    ("llm", "Language model", ("llm_source", "llm_embedded_model", "llm_base_url", "llm_model", "llm_api_key",
                               "llm_headers", "llm_extra_body", "llm_default_query", "llm_tools", "llm_temperature",
                               "llm_max_tokens", "llm_speculative_inference")),
    ("tts", "Text to speech", ("tts_engine", "tts_voice_id", "tts_speed", "tts_external_voice_id", "tts_model_name",
                               "tts_api_key", "tts_base_url", "tts_region", "tts_emotion_control",
                               "tts_pronunciation_dictionary_id")),
    ("perception", "Perception", ("pc_perception_model", "pc_visual_awareness_queries", "pc_perception_analysis_queries",
                                  "pc_visual_tool_prompt", "pc_visual_tools", "pc_pause_when_absent",
                                  "pc_absent_counts_as_left", "pc_base_url", "pc_model", "pc_api_key")),
    ("knowledge", "Knowledge and guardrails", ("document_ids", "document_tags", "objectives_id", "guardrail_ids")),
)
SECTION_OF_LAYER = {"conversational_flow": "flow", "stt": "stt", "llm": "llm", "tts": "tts", "perception": "perception"}
SECRET_CLEAR = {"llm_api_key": "llm_api_key_clear", "tts_api_key": "tts_api_key_clear", "pc_api_key": "pc_api_key_clear"}


def _ta(rows: int = 3, **attrs) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": rows, **attrs})


JSON_ATTRS = {"spellcheck": "false", "class": "mono", "data-json": "1"}


class PalEditorForm(forms.Form):
    """Every PAL option as a field; see the module docstring for how it is validated."""

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
    objectives_id = forms.CharField(label="Objectives id", required=False, max_length=32,
                                    help_text="Structured goals the agent works through (an o… id).")
    guardrail_ids = forms.CharField(label="Guardrail ids", required=False,
                                    help_text="Comma-separated g… ids of guardrails the agent must respect.")

    # conversational flow
    cf_turn_taking_patience = forms.ChoiceField(label="Turn-taking patience", required=False)
    cf_replica_interruptibility = forms.ChoiceField(label="Interruptibility", required=False)
    cf_turn_detection_model = forms.ChoiceField(label="Turn detection", required=False,
                                                choices=[(k, v) for k, v in TURN_MODEL_LABELS.items()])
    cf_idle_engagement = forms.ChoiceField(label="Idle engagement", required=False,
                                           choices=[("", "Default (off)")] + [(c, c.capitalize()) for c in L.IDLE_ENGAGEMENT])
    cf_voice_isolation = forms.ChoiceField(label="Voice isolation", required=False,
                                           choices=[("", "Default"), ("near", "Near — favour the closest voice"),
                                                    ("off", "Off")])
    cf_wake_phrase = forms.CharField(label="Wake phrase", required=False, max_length=100)

    # speech to text
    stt_engine = forms.ChoiceField(label="Speech-to-text engine", required=False)
    stt_hotwords = forms.CharField(label="Hotwords", required=False, max_length=1000,
                                   widget=forms.TextInput(attrs={"placeholder": "OpenCVI, Ada Lovelace, Zürich"}))
    stt_pause_sensitivity = forms.ChoiceField(label="Pause sensitivity (legacy)", required=False,
                                              choices=[(k, SENSITIVITY_LABELS[k]) for k in ("",) + L.SENSITIVITY])
    stt_interrupt_sensitivity = forms.ChoiceField(label="Interrupt sensitivity (legacy)", required=False,
                                                  choices=[(k, SENSITIVITY_LABELS[k]) for k in ("",) + L.SENSITIVITY])
    stt_smart_turn_detection = forms.ChoiceField(label="Smart turn detection (legacy)", required=False, choices=TRISTATE)

    # language model
    llm_source = forms.ChoiceField(
        label="Where the agent thinks", widget=forms.RadioSelect, initial="embedded",
        choices=[("embedded", "Embedded model on this server"),
                 ("endpoint", "An OpenAI-compatible endpoint (vLLM, llama.cpp server, a cloud API)")])
    llm_embedded_model = forms.ChoiceField(label="Embedded model", required=False)
    llm_base_url = forms.CharField(label="Base URL", required=False, max_length=2000,
                                   widget=forms.TextInput(attrs={"placeholder": "https://api.example.com/v1",
                                                                 "inputmode": "url", "spellcheck": "false"}))
    llm_model = forms.CharField(label="Model name", required=False, max_length=200,
                                widget=forms.TextInput(attrs={"placeholder": "gpt-4o-mini", "spellcheck": "false"}),
                                help_text="The model name the endpoint expects.")
    llm_api_key = forms.CharField(label="API key", required=False, max_length=500,
                                  widget=forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False))
    llm_api_key_clear = forms.BooleanField(label="Remove the stored key", required=False)
    llm_headers = forms.CharField(label="Extra headers (JSON object)", required=False, widget=_ta(2, **JSON_ATTRS))
    llm_extra_body = forms.CharField(label="Extra body (JSON object)", required=False, widget=_ta(2, **JSON_ATTRS))
    llm_default_query = forms.CharField(label="Query parameters (JSON object)", required=False,
                                        widget=_ta(2, **JSON_ATTRS))
    llm_tools = forms.CharField(label="Tools (JSON array of OpenAI function schemas)", required=False,
                                widget=_ta(6, **JSON_ATTRS))
    llm_temperature = forms.FloatField(label="Temperature", required=False,
                                       widget=forms.NumberInput(attrs={"step": "0.1", "placeholder": "0.7"}))
    llm_max_tokens = forms.IntegerField(label="Longest reply (tokens)", required=False,
                                        widget=forms.NumberInput(attrs={"placeholder": "160"}))
    llm_speculative_inference = forms.BooleanField(label="Speculative inference", required=False, initial=True)

    # text to speech
    tts_engine = forms.ChoiceField(label="Text-to-speech engine", required=False)
    tts_voice_id = forms.CharField(label="Voice", required=False, max_length=200,
                                   widget=forms.TextInput(attrs={"list": "voice-list", "placeholder": "en-us",
                                                                 "spellcheck": "false"}))
    tts_speed = forms.FloatField(label="Speed", required=False,
                                 widget=forms.NumberInput(attrs={"step": "0.05", "placeholder": "1.0"}),
                                 help_text="1 is the normal speaking rate; 0.5 to 2.0.")
    tts_external_voice_id = forms.CharField(label="External voice id", required=False, max_length=200)
    tts_model_name = forms.CharField(label="Provider model", required=False, max_length=200)
    tts_api_key = forms.CharField(label="Provider API key", required=False, max_length=500,
                                  widget=forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False))
    tts_api_key_clear = forms.BooleanField(label="Remove the stored key", required=False)
    tts_base_url = forms.CharField(label="Speech endpoint", required=False, max_length=2000,
                                   widget=forms.TextInput(attrs={"placeholder": "http://gpu-box:8880/v1",
                                                                 "spellcheck": "false"}))
    tts_region = forms.CharField(label="Azure region", required=False, max_length=50,
                                 widget=forms.TextInput(attrs={"placeholder": "westeurope", "spellcheck": "false"}),
                                 help_text="Azure AI Speech only: the region of your Speech resource.")
    tts_emotion_control = forms.ChoiceField(label="Emotion control", required=False, choices=TRISTATE)
    tts_pronunciation_dictionary_id = forms.CharField(label="Pronunciation dictionary id", required=False,
                                                      max_length=200)

    # perception
    pc_perception_model = forms.ChoiceField(label="Perception", required=False,
                                            choices=[(k, v) for k, v in PERCEPTION_LABELS.items()])
    pc_visual_awareness_queries = forms.CharField(
        label="Visual awareness questions (one per line)", required=False, widget=_ta(3),
        help_text=_help(L.PerceptionLayerSerializer, "visual_awareness_queries"))
    pc_perception_analysis_queries = forms.CharField(
        label="End-of-call questions (one per line)", required=False, widget=_ta(3),
        help_text=_help(L.PerceptionLayerSerializer, "perception_analysis_queries"))
    pc_visual_tool_prompt = forms.CharField(label="Visual tool prompt", required=False, widget=_ta(2))
    pc_visual_tools = forms.CharField(label="Visual tools (JSON array of OpenAI function schemas)", required=False,
                                      widget=_ta(4, **JSON_ATTRS))
    pc_pause_when_absent = forms.BooleanField(label="Pause when the person leaves the frame", required=False)
    pc_absent_counts_as_left = forms.BooleanField(label="Absence counts as leaving", required=False)
    pc_base_url = forms.CharField(label="Vision endpoint base URL", required=False, max_length=2000)
    pc_model = forms.CharField(label="Vision model", required=False, max_length=200)
    pc_api_key = forms.CharField(label="Vision endpoint API key", required=False, max_length=500,
                                 widget=forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False))
    pc_api_key_clear = forms.BooleanField(label="Remove the stored key", required=False)

    # Help texts borrowed from the layer serializers (the same words as the OpenAPI page).
    _LAYER_HELP = {
        "cf_turn_detection_model": (L.ConversationalFlowLayerSerializer, "turn_detection_model"),
        "cf_idle_engagement": (L.ConversationalFlowLayerSerializer, "idle_engagement"),
        "cf_voice_isolation": (L.ConversationalFlowLayerSerializer, "voice_isolation"),
        "cf_wake_phrase": (L.ConversationalFlowLayerSerializer, "wake_phrase"),
        "stt_engine": (L.SttLayerSerializer, "stt_engine"),
        "stt_hotwords": (L.SttLayerSerializer, "hotwords"),
        "stt_pause_sensitivity": (L.SttLayerSerializer, "participant_pause_sensitivity"),
        "stt_interrupt_sensitivity": (L.SttLayerSerializer, "participant_interrupt_sensitivity"),
        "stt_smart_turn_detection": (L.SttLayerSerializer, "smart_turn_detection"),
        "llm_base_url": (L.LlmLayerSerializer, "base_url"),
        "llm_api_key": (L.LlmLayerSerializer, "api_key"),
        "llm_headers": (L.LlmLayerSerializer, "headers"),
        "llm_extra_body": (L.LlmLayerSerializer, "extra_body"),
        "llm_default_query": (L.LlmLayerSerializer, "default_query"),
        "llm_speculative_inference": (L.LlmLayerSerializer, "speculative_inference"),
        "llm_tools": (L.LlmLayerSerializer, "tools"),
        "llm_temperature": (L.LlmLayerSerializer, "temperature"),
        "llm_max_tokens": (L.LlmLayerSerializer, "max_tokens"),
        "tts_engine": (L.TtsLayerSerializer, "tts_engine"),
        "tts_voice_id": (L.TtsLayerSerializer, "voice_id"),
        "tts_external_voice_id": (L.TtsLayerSerializer, "external_voice_id"),
        "tts_api_key": (L.TtsLayerSerializer, "api_key"),
        "tts_model_name": (L.TtsLayerSerializer, "tts_model_name"),
        "tts_base_url": (L.TtsLayerSerializer, "base_url"),
        "tts_emotion_control": (L.TtsLayerSerializer, "tts_emotion_control"),
        "pc_perception_model": (L.PerceptionLayerSerializer, "perception_model"),
        "pc_visual_tool_prompt": (L.PerceptionLayerSerializer, "visual_tool_prompt"),
        "pc_visual_tools": (L.PerceptionLayerSerializer, "visual_tools"),
        "pc_pause_when_absent": (L.PerceptionLayerSerializer, "pause_when_absent"),
        "pc_absent_counts_as_left": (L.PerceptionLayerSerializer, "absent_counts_as_left"),
        "pc_base_url": (L.PerceptionLayerSerializer, "base_url"),
        "pc_model": (L.PerceptionLayerSerializer, "model"),
        "pc_api_key": (L.PerceptionLayerSerializer, "api_key"),
    }

    def __init__(self, *args, faces: Iterable = (), pal: Pal | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pal = pal
        #: voice settings other than speed (engine-specific, no field of their own): kept as they are
        self.extra_voice_settings: dict[str, Any] = {}
        #: secrets stored on the PAL, masked ("****abcd"), by form field
        self.stored_secrets: dict[str, str] = {}
        #: errors about a whole layer (e.g. an unknown option), by section anchor
        self.section_errors: dict[str, list[str]] = {}
        for name, (serializer, field) in self._LAYER_HELP.items():
            if not self.fields[name].help_text:
                self.fields[name].help_text = _help(serializer, field)
        self.fields["cf_turn_taking_patience"].choices = patience_choices()
        self.fields["cf_turn_taking_patience"].help_text = patience_help()
        self.fields["cf_replica_interruptibility"].choices = interruptibility_choices()
        self.fields["cf_replica_interruptibility"].help_text = interruptibility_help()
        self.fields["stt_engine"].choices = _engine_choices("stt")
        self.fields["tts_engine"].choices = _engine_choices("tts")
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
                    and opt.path[2] in ("base_url", "api_key", "headers", "extra_body", "default_query"):
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
        for key in ("default_face_id", "objectives_id"):
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
ADVANCED = frozenset({
    "stt_pause_sensitivity", "stt_interrupt_sensitivity", "stt_smart_turn_detection",
    "llm_headers", "llm_extra_body", "llm_default_query", "llm_temperature", "llm_max_tokens",
    "llm_speculative_inference",
    "tts_external_voice_id", "tts_model_name", "tts_api_key", "tts_base_url", "tts_region", "tts_emotion_control",
    "tts_pronunciation_dictionary_id",
    "pc_base_url", "pc_model", "pc_api_key", "pc_visual_tool_prompt", "pc_visual_tools",
    "cf_turn_detection_model", "cf_voice_isolation",
})
ADVANCED_TITLES = {
    "stt": "Legacy options (hosted API names)",
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
    "knowledge": "Documents, objectives and guardrails, by id.",
}
#: fields that show only for one choice of another field: field -> (controlling field, value)
SHOW_WHEN = {
    "llm_embedded_model": ("llm_source", "embedded"),
    "llm_base_url": ("llm_source", "endpoint"),
    "llm_model": ("llm_source", "endpoint"),
    "llm_api_key": ("llm_source", "endpoint"),
    "llm_headers": ("llm_source", "endpoint"),
    "llm_extra_body": ("llm_source", "endpoint"),
    "llm_default_query": ("llm_source", "endpoint"),
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
    return {"conversational_flow": "Conversational flow", "stt": "Speech to text", "llm": "Language model",
            "tts": "Text to speech", "perception": "Perception"}.get(layer, layer)


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
    """(dotted path, message) pairs from a DRF ValidationError, a Django ValidationError or an
    ApplicationError (whose message may start with ``field: ...``)."""
    from cvi_site.errors import ApplicationError

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
        choices = [(f.id, f"{f.face_name or f.id}{' (stock)' if f.account_id is None else ''}")
                   for f in faces if f.status == "ready"]
        if pal is not None and pal.default_face_id:
            self.fields["face_id"].initial = pal.default_face_id
        self.fields["face_id"].choices = [("", "The PAL's default face")] + choices

    def to_data(self, pal: Pal) -> dict[str, Any]:
        c = self.cleaned_data
        data: dict[str, Any] = {"pal_id": pal.id, "properties": {"language": c.get("language") or "english"}}
        if c.get("face_id"):
            data["face_id"] = c["face_id"]
        if c.get("conversation_name"):
            data["conversation_name"] = c["conversation_name"]
        return data
