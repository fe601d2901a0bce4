"""Conversation requests as the hosted docs write them: the recording destinations (refused with a
400 naming them: recordings stay on this server's disk), enable_dynamic_greeting, and a face's
voice_name reaching the call."""
from __future__ import annotations

import pytest

from conversations.live.config import load_session_config
from conversations.models import Conversation
from faces.models import Face
from pals.models import Pal
from tests.factories import make_face, make_pal

pytestmark = pytest.mark.django_db


@pytest.fixture
def face(account):
    return make_face(account=account)


@pytest.fixture
def pal(account, face):
    return make_pal(account=account, face=face)


def _create(api, body):
    return api.post("/v2/conversations", body, format="json")


def test_the_hosted_recording_example_is_refused_naming_the_bucket(api, face, pal):
    # the hosted docs' create-conversation example, with its S3 destination
    r = _create(api, {"replica_id": face.id, "persona_id": pal.id, "conversation_name": "A Meeting with Hassaan",
                      "custom_greeting": "Hey there Hassaan, long time no see!",
                      "properties": {"max_call_duration": 3600, "participant_left_timeout": 60,
                                     "participant_absent_timeout": 300, "enable_recording": True,
                                     "enable_closed_captions": True, "apply_greenscreen": True, "language": "english",
                                     "recording_s3_bucket_name": "conversation-recordings",
                                     "recording_s3_bucket_region": "us-east-1", "aws_assume_role_arn": ""}})
    assert r.status_code == 400
    error = r.json()["error"]
    assert "recording_s3_bucket_name" in error and "this server's disk" in error
    assert not Conversation.objects.exists()


@pytest.mark.parametrize("name, value", [
    ("recording_s3_bucket_region", "us-east-1"),
    ("aws_assume_role_arn", "arn:aws:iam::123456789012:role/CVIRecordingRole"),
    ("recording_storage", {"provider": "s3", "bucket_name": "recordings", "role_arn": "arn:aws:iam::1:role/r"}),
])
def test_each_recording_destination_is_a_400_naming_it(api, face, pal, name, value):
    r = _create(api, {"face_id": face.id, "pal_id": pal.id,
                      "properties": {"enable_recording": True, name: value}})
    assert r.status_code == 400 and name in r.json()["error"] and "GET /v2/conversations/{id}/recording" in r.json()["error"]


def test_empty_destinations_ask_for_nothing_and_recording_stays_on_disk(api, face, pal):
    r = _create(api, {"face_id": face.id, "pal_id": pal.id,
                      "properties": {"enable_recording": True, "recording_s3_bucket_name": "",
                                     "recording_s3_bucket_region": "", "aws_assume_role_arn": ""}})
    assert r.status_code == 200, r.json()
    props = api.get(f"/v2/conversations/{r.json()['conversation_id']}").json()["properties"]
    assert props["enable_recording"] is True
    assert not {"recording_s3_bucket_name", "recording_s3_bucket_region", "aws_assume_role_arn"} & set(props)


def test_dynamic_greeting_reaches_the_call_instead_of_the_pals_fixed_greeting(api, face, account):
    pal = make_pal(account=account, face=face)
    Pal.objects.filter(pk=pal.pk).update(greeting="A fixed hello.")
    r = _create(api, {"replica_id": face.id, "persona_id": pal.id, "enable_dynamic_greeting": True,
                      "conversational_context": "You are meeting Hassaan."})
    assert r.status_code == 200, r.json()
    cid = r.json()["conversation_id"]
    assert api.get(f"/v2/conversations/{cid}").json()["enable_dynamic_greeting"] is True
    cfg = load_session_config(cid).pipeline
    assert cfg.dynamic_greeting is True and cfg.custom_greeting == ""
    # without it, the fixed greeting is the one spoken
    cid = _create(api, {"replica_id": face.id, "persona_id": pal.id}).json()["conversation_id"]
    cfg = load_session_config(cid).pipeline
    assert cfg.dynamic_greeting is False and cfg.custom_greeting == "A fixed hello."


def test_dynamic_greeting_with_a_custom_greeting_or_an_echo_pal_is_a_400(api, face, account):
    pal = make_pal(account=account, face=face)
    r = _create(api, {"face_id": face.id, "pal_id": pal.id, "enable_dynamic_greeting": True, "custom_greeting": "Hi"})
    assert r.status_code == 400 and "enable_dynamic_greeting" in r.json()["error"]
    Pal.objects.filter(pk=pal.pk).update(pipeline_mode="echo")
    r = _create(api, {"face_id": face.id, "pal_id": pal.id, "enable_dynamic_greeting": True})
    assert r.status_code == 400 and "enable_dynamic_greeting" in r.json()["error"] and "echo" in r.json()["error"]


def test_a_faces_voice_name_is_the_calls_voice_when_the_pal_names_none(api, account):
    face = make_face(account=account)
    Face.objects.filter(pk=face.pk).update(voice_name="en_US-joe-medium")
    plain = make_pal(account=account, face=face)
    voiced = make_pal(account=account, face=face, layers={"tts": {"voice_id": "en-gb"}})
    cid = _create(api, {"face_id": face.id, "pal_id": plain.id}).json()["conversation_id"]
    tts = load_session_config(cid).pipeline.tts
    assert (tts.tts_engine, tts.voice_id) == ("piper", "en_US-joe-medium")
    cid = _create(api, {"face_id": face.id, "pal_id": voiced.id}).json()["conversation_id"]
    tts = load_session_config(cid).pipeline.tts
    assert tts.voice_id == "en-gb" and tts.tts_engine in ("", "espeak-ng")


def test_a_faces_espeak_voice_with_the_default_engine(api, account):
    face = make_face(account=account)
    Face.objects.filter(pk=face.pk).update(voice_name="es")
    pal = make_pal(account=account, face=face, layers={"tts": {"tts_engine": "espeak-ng"}})
    cid = _create(api, {"face_id": face.id, "pal_id": pal.id}).json()["conversation_id"]
    assert load_session_config(cid).pipeline.tts.voice_id == "es"
