"""No option is accepted and ignored.

The test walks the OpenAPI schema's request bodies of PALs (personas), conversations and faces
(replicas), down to every layer option, and the PAL editor's form fields. Every accepted field must
be either

- a layer option declared in the layer spec: consumed (``consumer`` names the code a call reads it
  in, and that code mentions it) or refused (``unsupported``: any value but the neutral one is a
  400 naming it), or
- listed in ``CONSUMERS`` below with the module a call (or the training job) reads it in and the
  text that reading is written with, which must be found there, or
- listed in ``REFUSED`` with a value the API must refuse with a 400 naming the field.

A new field in a serializer, a form or the spec with none of these fails here, and so does a listed
consumer that stops reading its field.
"""
from __future__ import annotations

import importlib
import inspect

import pytest

from conversations.realtime import layerspec as spec

#: the request bodies walked, by operation
BODIES = {("/v2/pals", "post"): "pal", ("/v2/personas", "post"): "pal",
          ("/v2/conversations", "post"): "conversation",
          ("/v2/faces", "post"): "face", ("/v2/replicas", "post"): "face"}

#: every accepted field outside the layer spec: (module, what its reading of the field looks like)
CONSUMERS: dict[str, tuple[str, str]] = {
    # PALs: what a call reads from the conversation's PAL snapshot
    "pal.pal_name": ("conversations.page", '.get("pal_name")'),
    "pal.persona_name": ("pals.services", '"persona_name": "pal_name"'),
    "pal.system_prompt": ("conversations.live.config", 'snap.get("system_prompt"'),
    "pal.context": ("conversations.live.config", 'snap.get("context"'),
    "pal.greeting": ("conversations.live.config", 'snap.get("greeting"'),
    "pal.pipeline_mode": ("conversations.live.config", 'snap.get("pipeline_mode"'),
    "pal.default_face_id": ("conversations.services", "pal.default_face_id"),
    "pal.default_replica_id": ("pals.services", '"default_replica_id": "default_face_id"'),
    "pal.document_ids": ("conversations.live.config", 'snap.get("document_ids")'),
    "pal.document_tags": ("conversations.live.config", 'snap.get("document_tags")'),
    "pal.objectives_id": ("conversations.services", "objectives_id=pal.objectives_id"),
    "pal.guardrail_ids": ("conversations.services", "guardrail_ids=list(pal.guardrail_ids)"),
    "pal.guardrails_id": ("conversations.services", "guardrails_id=pal.guardrails_id"),
    # conversations: the session configuration a call runs (and the page, the sweeper)
    "conversation.replica_id": ("conversations.services", '"replica_id": "face_id"'),
    "conversation.face_id": ("conversations.services", 'values.pop("face_id"'),
    "conversation.persona_id": ("conversations.services", '"persona_id": "pal_id"'),
    "conversation.pal_id": ("conversations.services", 'values.pop("pal_id"'),
    "conversation.conversation_name": ("conversations.page", "conversation.conversation_name"),
    "conversation.conversational_context": ("conversations.live.config", "conv.conversational_context"),
    "conversation.custom_greeting": ("conversations.live.config", "conv.custom_greeting"),
    "conversation.enable_dynamic_greeting": ("conversations.live.config", "conv.enable_dynamic_greeting"),
    "conversation.callback_url": ("conversations.live.config", "conv.callback_url"),
    "conversation.audio_only": ("conversations.live.config", "conv.audio_only"),
    "conversation.test_mode": ("conversations.services", 'values.get("test_mode"'),
    "conversation.require_auth": ("conversations.live.config", "conv.require_auth"),
    "conversation.max_participants": ("conversations.live.config", "conv.max_participants"),
    "conversation.memory_stores": ("conversations.live.config", "conv.memory_stores"),
    "conversation.document_ids": ("conversations.live.config", "conv.document_ids"),
    "conversation.document_tags": ("conversations.live.config", "conv.document_tags"),
    "conversation.document_retrieval_strategy": ("conversations.live.config", "conv.document_retrieval_strategy"),
    "conversation.properties.max_call_duration": ("conversations.live.config", 'props.get("max_call_duration"'),
    "conversation.properties.participant_left_timeout": ("conversations.live.config",
                                                         'props.get("participant_left_timeout"'),
    "conversation.properties.participant_absent_timeout": ("conversations.live.config",
                                                           'props.get("participant_absent_timeout"'),
    "conversation.properties.enable_recording": ("conversations.live.config", 'props.get("enable_recording")'),
    "conversation.properties.enable_closed_captions": ("conversations.live.config",
                                                       'props.get("enable_closed_captions"'),
    "conversation.properties.apply_greenscreen": ("conversations.live.config", 'props.get("apply_greenscreen")'),
    "conversation.properties.language": ("conversations.live.config", 'props.get("language"'),
    # faces: what the training job reads, and what a call with the face reads
    "face.train_video_url": ("faces.training_job", "face.train_video_url"),
    "face.train_image_url": ("faces.training_job", "face.train_image_url"),
    "face.file": ("faces.training_job", "face.source_file"),
    "face.consent_video_url": ("faces.training_job", "face.consent_video_url"),
    "face.callback_url": ("faces.training_job", "face.callback_url"),
    "face.face_name": ("faces.api.views", 'v.get("face_name")'),
    "face.replica_name": ("faces.api.views", 'v.get("replica_name")'),
    "face.voice_name": ("conversations.services", "face.voice_name"),
    # shown as the hosted name it was created with; the create response warns it changes nothing
    "face.model_name": ("faces.api.views", '"model_name": face.model_name'),
}
#: accepted fields whose every non-empty value is refused: a value that must get a 400 naming it
REFUSED: dict[str, object] = {
    "conversation.properties.recording_storage": {"provider": "s3", "bucket_name": "b"},
    "conversation.properties.recording_s3_bucket_name": "recordings",
    "conversation.properties.recording_s3_bucket_region": "us-east-1",
    "conversation.properties.aws_assume_role_arn": "arn:aws:iam::123456789012:role/r",
}
#: the modules the layer spec's ``consumer`` texts name
CONSUMER_MODULES = {
    "config": "conversations.realtime.config", "frontdoor": "conversations.realtime.frontdoor",
    "perception.options": "conversations.realtime.perception.options",
    "perception.vision_llm": "conversations.realtime.perception.options",
    "session": "conversations.live.perception", "engines.azure_speech": "conversations.realtime.engines.azure_speech",
}
#: editor fields that are not API fields of their own: the LLM model shown as a source and two
#: model fields (they make layers.llm.model and base_url), and "clear this secret" boxes
FORM_HELPERS = {"llm_source", "llm_embedded_model", "llm_model"}


def _schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    for key in ("allOf", "oneOf", "anyOf"):
        if key in node and len(node[key]) == 1:
            return _resolve(schema, node[key][0])
    return node


def _fields(schema: dict, node: dict, prefix: str) -> list[str]:
    """Dotted paths of every accepted field under ``node``; layer options are leaves."""
    node = _resolve(schema, node)
    out = []
    for name, sub in (node.get("properties") or {}).items():
        path = f"{prefix}.{name}"
        if node.get("readOnly") or _resolve(schema, sub).get("readOnly"):
            continue
        depth = path.count(".")
        inner = _resolve(schema, sub)
        is_layer_container = path.endswith(".layers") or (".layers." in path and depth == 2)
        if inner.get("properties") and (is_layer_container or path.endswith(".properties")):
            out += _fields(schema, sub, path)
        else:
            out.append(path)
    return out


def accepted_fields() -> list[str]:
    schema = _schema()
    found: set[str] = set()
    for (url, method), kind in BODIES.items():
        # the router accepts both; the schema spells the path with its optional slash
        operation = (schema["paths"].get(url) or schema["paths"].get(url + "/") or {}).get(method)
        assert operation, f"{method.upper()} {url} is not in the schema"
        for content in operation["requestBody"]["content"].values():
            found.update(_fields(schema, content["schema"], kind))
    return sorted(found)


def _layer_option(path: str) -> spec.Option | None:
    parts = path.split(".")
    if len(parts) == 4 and parts[1] == "layers":
        return spec.get(parts[2], parts[3])
    return None


def _consumer_module(opt: spec.Option) -> str:
    head = opt.consumer.split(" ")[0]
    for prefix in sorted(CONSUMER_MODULES, key=len, reverse=True):
        if head == prefix or head.startswith(prefix + "."):
            return CONSUMER_MODULES[prefix]
    raise AssertionError(f"layers.{opt.dotted}: consumer {opt.consumer!r} names no known module")


def test_the_walk_finds_the_fields_of_every_body():
    fields = accepted_fields()
    for expected in ("pal.system_prompt", "pal.layers.llm.model", "pal.layers.transport.transport_type",
                     "conversation.custom_greeting", "conversation.properties.language", "face.model_name"):
        assert expected in fields
    assert len(fields) > 80


def test_every_accepted_field_is_consumed_or_refused():
    unaccounted = []
    for path in accepted_fields():
        opt = _layer_option(path)
        if opt is not None:
            if opt.unsupported:
                continue  # refused: checked below
            assert opt.consumer, f"{path}: a supported layer option with no consumer"
            source = inspect.getsource(importlib.import_module(_consumer_module(opt)))
            assert opt.name in source, f"{path}: {opt.consumer} never mentions {opt.name}"
            continue
        if path in REFUSED:
            continue
        if path not in CONSUMERS:
            unaccounted.append(path)
            continue
        module, reading = CONSUMERS[path]
        assert reading in inspect.getsource(importlib.import_module(module)), \
            f"{path}: {module} no longer reads it ({reading!r} not found)"
    assert not unaccounted, ("accepted but nothing is declared to consume or refuse them "
                             f"(add the consumer to CONSUMERS, or refuse them): {unaccounted}")
    stale = (set(CONSUMERS) | set(REFUSED)) - set(accepted_fields())
    assert not stale, f"listed but no longer accepted: {sorted(stale)}"


@pytest.mark.django_db
@pytest.mark.parametrize("path", sorted(REFUSED))
def test_a_refused_field_is_a_400_naming_it(api, account, path):
    from tests.factories import make_face, make_pal

    face = make_face(account=account)
    pal = make_pal(account=account, face=face)
    *_, name = path.split(".")
    r = api.post("/v2/conversations", {"face_id": face.id, "pal_id": pal.id, "properties": {name: REFUSED[path]}},
                 format="json")
    assert r.status_code == 400 and name in r.json()["error"], r.json()


@pytest.mark.parametrize("opt", [o for o in spec.OPTIONS if o.unsupported], ids=lambda o: o.dotted)
def test_an_unsupported_layer_option_is_refused(opt):
    from rest_framework.exceptions import ValidationError

    from pals.layers import validate_layers

    value = next(c for c in opt.choices if c != opt.neutral) if opt.kind == "choice" else (
        not opt.neutral if opt.kind == "bool" else "sample")
    with pytest.raises(ValidationError) as err:
        validate_layers({opt.layer: {opt.name: value}})
    assert opt.name in str(err.value.detail[opt.layer])


def test_every_editor_field_is_an_api_field_that_is_accounted_for():
    from pals import editor_fields, forms

    api_fields = set(accepted_fields())
    form = forms.PalEditorForm()
    by_field = {o.field: o.path for o in editor_fields.OPTIONS}
    for name in form.fields:
        if name in FORM_HELPERS or name in editor_fields.SECRET_CLEAR.values():
            continue
        assert name in by_field, f"editor field {name} is not an API field"
        path = "pal." + ".".join(by_field[name])
        if path.startswith("pal.layers.") and path.count(".") == 4:  # a map's sub-key (voice_settings.speed)
            path = path.rsplit(".", 1)[0]
        assert path in api_fields, f"editor field {name} ({path}) is not accepted by the API"
