"""PALs written as the hosted docs write them: its managed engine names become the closest
embedded engine and the response's ``warnings`` say so; ``layers.transport`` takes what this server
does and refuses the rest with a 400 saying what it supports."""
from __future__ import annotations

import pytest

from conversations.realtime.config import PipelineConfig
from conversations.realtime.engines import hosted, registry
from pals.models import Pal

pytestmark = pytest.mark.django_db


def create(api, **body):
    return api.post("/v2/personas", body, format="json")


def test_a_hosted_llm_name_maps_to_an_embedded_model_with_a_warning(api):
    r = create(api, persona_name="Interviewer", system_prompt="You interview.", pipeline_mode="full",
               layers={"llm": {"model": "tavus-gpt-4o"}})
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["layers"]["llm"]["model"] == "qwen2.5-coder-1.5b"
    assert body["warnings"] == ["layers.llm.model 'tavus-gpt-4o' is a model of the hosted product; "
                                "this PAL uses the embedded model qwen2.5-coder-1.5b"]
    # the recommended quick one: no model stored, so the call uses the model this box serves
    r = create(api, system_prompt="x", layers={"llm": {"model": "tavus-gpt-oss"}})
    assert r.status_code == 200 and "model" not in r.json()["layers"].get("llm", {})
    assert "tavus-gpt-oss" in r.json()["warnings"][0]
    cfg = PipelineConfig.from_layers("x", "", Pal.objects.get(pk=r.json()["pal_id"]).layers)
    assert registry.canonical_name("llm", cfg.llm.model or None) == registry.service_model()


def test_every_hosted_llm_maps_onto_a_model_that_exists_here():
    names = registry.engine_names("llm")
    for hosted_name, target in hosted.HOSTED_LLMS.items():
        assert target == hosted.SERVER_DEFAULT or target in names, hosted_name
    for hosted_name, target in hosted.HOSTED_STT.items():
        assert target == hosted.SERVER_DEFAULT or target in registry.engine_names("stt"), hosted_name
    for hosted_name, target in hosted.MANAGED_TTS.items():
        assert target in registry.engine_names("tts"), hosted_name


def test_a_managed_tts_engine_without_a_key_speaks_with_the_embedded_one(api):
    r = create(api, system_prompt="x", layers={"tts": {"tts_engine": "cartesia", "external_voice_id": "a0e99841",
                                                       "tts_model_name": "sonic-3", "voice_settings": {"speed": 1.2}}})
    assert r.status_code == 200, r.json()
    assert r.json()["layers"]["tts"] == {"tts_engine": registry.DEFAULT_TTS, "voice_settings": {"speed": 1.2}}
    (warning,) = r.json()["warnings"]
    assert "'cartesia' without an api_key" in warning and "external_voice_id" in warning and "tts_model_name" in warning


def test_a_cloud_tts_engine_with_its_own_key_stays_itself(api):
    r = create(api, system_prompt="x", layers={"tts": {"tts_engine": "elevenlabs", "api_key": "sk-elevenlabs-1234",
                                                       "external_voice_id": "voice-1"}})
    assert r.status_code == 200, r.json()
    assert r.json()["layers"]["tts"]["tts_engine"] == "elevenlabs" and r.json()["warnings"] == []


def test_hosted_stt_names_and_hosted_choice_names_are_reported(api):
    r = create(api, system_prompt="x", layers={
        "stt": {"stt_engine": "tavus-advanced", "hotwords": "Roey"},
        "perception": {"perception_model": "raven-0"},
        "conversational_flow": {"turn_detection_model": "sparrow-1"}})
    assert r.status_code == 200, r.json()
    layers = r.json()["layers"]
    assert layers["stt"] == {"stt_engine": registry.DEFAULT_STT, "hotwords": "Roey"}
    assert layers["perception"]["perception_model"] == "mediapipe"
    assert layers["conversational_flow"]["turn_detection_model"] == "smart-turn"
    warnings = " | ".join(r.json()["warnings"])
    assert len(r.json()["warnings"]) == 3
    for name in ("tavus-advanced", "raven-0", "sparrow-1"):
        assert name in warnings
    r = create(api, system_prompt="x", layers={"stt": {"stt_engine": "tavus-auto"}})
    assert r.status_code == 200 and "stt_engine" not in r.json()["layers"].get("stt", {})


def test_patch_reports_what_it_mapped(api):
    pal_id = create(api, system_prompt="x").json()["persona_id"]
    r = api.patch(f"/v2/personas/{pal_id}", [{"op": "add", "path": "/layers/llm", "value": {"model": "tavus-llama-4"}}],
                  format="json")
    assert r.status_code == 200, r.json()
    assert "tavus-llama-4" in r.json()["warnings"][0]
    r = api.patch(f"/v2/personas/{pal_id}", [{"op": "replace", "path": "/pal_name", "value": "Quiet"}], format="json")
    assert r.status_code == 200 and r.json()["warnings"] == []


def test_a_remote_model_with_a_hosted_looking_name_is_left_alone(api):
    r = create(api, system_prompt="x", layers={"llm": {"model": "tavus-gpt-oss", "base_url": "https://api.example.com/v1"}})
    assert r.status_code == 200, r.json()
    assert r.json()["layers"]["llm"]["model"] == "tavus-gpt-oss" and r.json()["warnings"] == []


def test_transport_daily_is_what_this_server_does_and_livekit_is_refused(api):
    # the hosted docs' LiveKit persona
    r = create(api, persona_name="My Persona", pipeline_mode="echo", layers={"transport": {"transport_type": "livekit"}})
    assert r.status_code == 400
    error = r.json()["error"]
    assert "transport_type" in error and "WebRTC" in error and "'daily'" in error
    r = create(api, system_prompt="x", layers={"transport": {"transport_type": "daily"}})
    assert r.status_code == 200 and r.json()["layers"]["transport"] == {"transport_type": "daily"}
    r = create(api, system_prompt="x", layers={"transport": {"transport_type": "zoom"}})
    assert r.status_code == 400 and "transport_type" in r.json()["error"]


def test_the_engines_endpoint_lists_the_hosted_names(api):
    body = api.get("/v2/engines").json()
    assert body["hosted_names"]["llm.model"]["tavus-gpt-4o"] == "qwen2.5-coder-1.5b"
    assert body["hosted_names"]["perception.perception_model"]["raven-0"] == "mediapipe"
