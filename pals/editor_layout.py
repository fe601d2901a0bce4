"""How the PAL editor is laid out: its sections in order and the fields of each, each section's
introduction, which fields are folded under "more options" (and that fold's title), and which
fields show only for one choice of another field.

A layer's section lists that layer's options from the layer spec (``pals.editor_fields``), in
the spec's order; the "more options" folds are the options the spec marks ``advanced``.
"""
from __future__ import annotations

from conversations.realtime import layerspec as spec
from pals.editor_fields import EDITOR_OPTIONS

#: form-only fields a layer's section shows first (the LLM's source and model are one option, shown as three)
_SECTION_EXTRAS = {"llm": ("llm_source", "llm_embedded_model", "llm_model")}
#: each layer's section anchor in the editor
SECTION_OF_LAYER = {"conversational_flow": "flow", "stt": "stt", "llm": "llm", "tts": "tts", "perception": "perception"}
#: editor sections in display order: (anchor, title, fields)
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

#: fields shown folded under "More options" (legacy names, cloud-provider settings)
ADVANCED = frozenset(o.form_field for o in EDITOR_OPTIONS if o.advanced)
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
#: the LLM options used only with an endpoint (shown, and stored, only when the LLM runs at one)
ENDPOINT_ONLY = ("base_url", "api_key", "headers", "extra_body", "default_query")
#: fields that show only for one choice of another field: field -> (controlling field, value)
SHOW_WHEN = {
    "llm_embedded_model": ("llm_source", "embedded"),
    "llm_model": ("llm_source", "endpoint"),
    **{spec.get("llm", name).form_field: ("llm_source", "endpoint") for name in ENDPOINT_ONLY},
}
