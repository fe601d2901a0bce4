from __future__ import annotations

import pytest

from conversations.models import Conversation, Utterance
from faces.models import Face
from tests.factories import make_face, make_pal

pytestmark = pytest.mark.django_db


@pytest.fixture
def face(account):
    return make_face(account=account)


@pytest.fixture
def pal(account, face):
    return make_pal(account=account, face=face)


def test_quickstart_call_returns_a_usable_conversation_url(api, face, pal, client):
    r = api.post("/v2/conversations", {"replica_id": face.id, "persona_id": pal.id}, format="json")
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["status"] == "active" and body["conversation_id"].startswith("c")
    assert body["conversation_url"] == f"http://testserver/c/{body['conversation_id']}/"
    assert "meeting_token" not in body


def test_public_url_setting_builds_the_url(api, face, pal, settings):
    settings.PUBLIC_URL = "https://cvi.example.com"
    body = api.post("/v2/conversations", {"face_id": face.id, "pal_id": pal.id}, format="json").json()
    assert body["conversation_url"].startswith("https://cvi.example.com/c/")


def test_defaults_face_from_pal_and_pal_from_stock(api, account, face, pal):
    body = api.post("/v2/conversations", {"pal_id": pal.id}, format="json").json()
    assert body["face_id"] == face.id
    Face.objects.filter(pk="rstock000001").update(status="ready")
    body = api.post("/v2/conversations", {}, format="json").json()
    assert body["pal_id"] == "pstock000001" and body["face_id"] == "rstock000001"


def test_properties_defaults_applied(api, face, pal):
    cid = api.post("/v2/conversations", {"face_id": face.id, "pal_id": pal.id, "properties": {"language": "Spanish"}},
                   format="json").json()["conversation_id"]
    props = api.get(f"/v2/conversations/{cid}").json()["properties"]
    assert props["max_call_duration"] == 3600 and props["participant_absent_timeout"] == 300
    assert props["participant_left_timeout"] == 0 and props["language"] == "spanish"


@pytest.mark.parametrize(
    "extra, needle",
    [
        ({"max_participants": 1}, "max_participants"),
        ({"properties": {"language": "klingon"}}, "unknown language"),
        ({"properties": {"max_call_duration": -5}}, "max_call_duration"),
        ({"properties": {"warp": 9}}, "unknown propert"),
        ({"document_retrieval_strategy": "fastest"}, "document_retrieval_strategy"),
        ({"callback_url": "nope"}, "callback_url"),
        ({"persona_id": "pnothere"}, "no PAL"),
        ({"replica_id": "rnothere"}, "no face"),
        ({"sparkles": True}, "unknown field"),
    ],
)
def test_create_validation(api, face, pal, extra, needle):
    body = {"face_id": face.id, "pal_id": pal.id}
    if "persona_id" in extra:
        body.pop("pal_id")
    if "replica_id" in extra:
        body.pop("face_id")
    r = api.post("/v2/conversations", {**body, **extra}, format="json")
    assert r.status_code == 400, r.json()
    assert needle in r.json()["error"]


def test_face_must_be_ready(api, account, pal):
    training = make_face(account=account, status=Face.Status.TRAINING)
    r = api.post("/v2/conversations", {"face_id": training.id, "pal_id": pal.id}, format="json")
    assert r.status_code == 400 and "not ready" in r.json()["error"]


def test_pal_without_default_face_needs_a_face(api, account):
    bare = make_pal(account=account)
    r = api.post("/v2/conversations", {"pal_id": bare.id}, format="json")
    assert r.status_code == 400 and "face_id is required" in r.json()["error"]


def test_test_mode_is_ended_at_once_and_not_counted(api, face, pal, account):
    account.max_concurrent_conversations = 1
    account.save()
    body = api.post("/v2/conversations", {"face_id": face.id, "pal_id": pal.id, "test_mode": True}, format="json").json()
    assert body["status"] == "ended"
    assert api.post("/v2/conversations", {"face_id": face.id, "pal_id": pal.id}, format="json").status_code == 200


def test_require_auth_returns_a_meeting_token(api, face, pal):
    body = api.post("/v2/conversations", {"face_id": face.id, "pal_id": pal.id, "require_auth": True}, format="json").json()
    assert len(body["meeting_token"]) >= 20
    assert "meeting_token" not in api.get(f"/v2/conversations/{body['conversation_id']}").json()


def test_concurrency_limit_has_the_documented_body(api, face, pal, account):
    account.max_concurrent_conversations = 2
    account.save()
    for _ in range(2):
        assert api.post("/v2/conversations", {"face_id": face.id, "pal_id": pal.id}, format="json").status_code == 200
    r = api.post("/v2/conversations", {"face_id": face.id, "pal_id": pal.id}, format="json")
    assert r.status_code == 400
    assert r.json() == {"message": "User has reached maximum concurrent conversations"}


def test_end_is_idempotent_and_records_shutdown(api, face, pal):
    cid = api.post("/v2/conversations", {"face_id": face.id, "pal_id": pal.id}, format="json").json()["conversation_id"]
    r = api.post(f"/v2/conversations/{cid}/end")
    assert r.status_code == 200 and r.json()["status"] == "ended"
    assert r.json()["shutdown_reason"] == "end_conversation_endpoint_hit"
    assert api.post(f"/v2/conversations/{cid}/end").status_code == 200
    events = api.get(f"/v2/conversations/{cid}?verbose=true").json()["events"]
    types = [e["event_type"] for e in events]
    assert types.count("system.shutdown") == 1 and "application.transcription_ready" in types
    assert "events" not in api.get(f"/v2/conversations/{cid}").json()


def test_list_and_status_filter(api, face, pal):
    a = api.post("/v2/conversations", {"face_id": face.id, "pal_id": pal.id}, format="json").json()["conversation_id"]
    b = api.post("/v2/conversations", {"face_id": face.id, "pal_id": pal.id}, format="json").json()["conversation_id"]
    api.post(f"/v2/conversations/{a}/end")
    assert [c["conversation_id"] for c in api.get("/v2/conversations?status=active").json()["data"]] == [b]
    assert api.get("/v2/conversations").json()["total_count"] == 2


def test_delete_soft_keeps_transcript_hard_erases(api, face, pal):
    ids = [api.post("/v2/conversations", {"face_id": face.id, "pal_id": pal.id}, format="json").json()["conversation_id"]
           for _ in range(2)]
    for cid in ids:
        Utterance.objects.create(conversation_id=cid, role="user", content="hello")
    assert api.delete(f"/v2/conversations/{ids[0]}").status_code == 204
    assert api.get(f"/v2/conversations/{ids[0]}").status_code == 404
    assert Utterance.objects.filter(conversation_id=ids[0]).count() == 1
    assert api.delete(f"/v2/conversations/{ids[1]}?hard=true").status_code == 204
    assert not Conversation.objects.filter(pk=ids[1]).exists()
    assert Utterance.objects.filter(conversation_id=ids[1]).count() == 0


def test_other_accounts_conversation_is_404(api, other_api, other_account):
    other_face = make_face(account=other_account)
    other_pal = make_pal(account=other_account, face=other_face)
    cid = other_api.post("/v2/conversations", {"face_id": other_face.id, "pal_id": other_pal.id}, format="json").json()["conversation_id"]
    assert api.get(f"/v2/conversations/{cid}").status_code == 404
    assert api.post(f"/v2/conversations/{cid}/end").status_code == 404
    assert api.delete(f"/v2/conversations/{cid}").status_code == 404
    # and another account's face or PAL cannot be used either
    r = api.post("/v2/conversations", {"face_id": other_face.id, "pal_id": other_pal.id}, format="json")
    assert r.status_code == 400


def test_webhooks_are_queued_signed_on_end(api, face, pal, monkeypatch, django_capture_on_commit_callbacks):
    from cvi_site.models import WebhookDelivery

    queued = []
    monkeypatch.setattr("cvi_site.webhooks.webhook_attempt.delay", queued.append)
    cid = api.post("/v2/conversations", {"face_id": face.id, "pal_id": pal.id, "callback_url": "https://hooks.example.com/x"},
                   format="json").json()["conversation_id"]
    with django_capture_on_commit_callbacks(execute=True):
        api.post(f"/v2/conversations/{cid}/end")
    sent = list(WebhookDelivery.objects.filter(subject_id=cid).order_by("pk"))
    assert [d.event_type for d in sent] == ["system.shutdown", "application.transcription_ready"]
    assert queued == [d.pk for d in sent]
    assert all(d.payload["conversation_id"] == cid and d.payload["webhook_url"] == "https://hooks.example.com/x"
               and d.account_id == face.account_id for d in sent)


def test_recording_download_and_its_absence(api, other_api, face, pal, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    from conversations.services import conversation_set_recording, recording_path_for

    cid = api.post("/v2/conversations", {"face_id": face.id, "pal_id": pal.id}, format="json").json()["conversation_id"]
    r = api.get(f"/v2/conversations/{cid}/recording", HTTP_ACCEPT="video/mp4")
    assert r.status_code == 404 and "no recording (enable_recording was off)" in r.json()["error"]
    assert api.get(f"/v2/conversations/{cid}").json()["recording_url"] is None

    path = recording_path_for(cid, video=False)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"m4a bytes")
    conversation_set_recording(conversation_id=cid, path=path, duration_s=12.5, base_url="https://cvi.example")
    r = api.get(f"/v2/conversations/{cid}/recording")
    assert r.status_code == 200 and r["Content-Type"] == "audio/mp4" and b"".join(r.streaming_content) == b"m4a bytes"
    body = api.get(f"/v2/conversations/{cid}?verbose=true").json()
    assert body["recording_duration"] == 12.5 and body["recording_url"].endswith(f"/v2/conversations/{cid}/recording")
    ready = [e for e in body["events"] if e["event_type"] == "application.recording_ready"]
    assert ready[0]["properties"] == {"storage_uri": f"https://cvi.example/v2/conversations/{cid}/recording",
                                      "duration": 12.5}
    assert other_api.get(f"/v2/conversations/{cid}/recording").status_code == 404
    # A soft delete keeps the file; a hard delete erases it.
    assert api.delete(f"/v2/conversations/{cid}").status_code == 204 and path.exists()


def test_half_written_recordings_left_by_a_dead_process_are_removed(settings, tmp_path):
    import os
    import time

    from conversations.services import recordings_remove_abandoned
    from conversations.tasks import conversation_fail_stale

    settings.DATA_DIR = tmp_path
    assert recordings_remove_abandoned() == []  # no folder yet: nothing to do
    folder = tmp_path / "recordings"
    folder.mkdir()
    (folder / "cdead.mp4.part").write_bytes(b"x")
    (folder / "clive.mp4.part").write_bytes(b"x")
    (folder / "cdone.mp4").write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(folder / "cdead.mp4.part", (two_hours_ago, two_hours_ago))
    os.utime(folder / "cdone.mp4", (two_hours_ago, two_hours_ago))
    conversation_fail_stale()  # the beat job does it
    assert sorted(p.name for p in folder.iterdir()) == ["cdone.mp4", "clive.mp4.part"]


def test_an_english_only_recogniser_refuses_another_language(api, face, pal):
    pal.layers = {"stt": {"stt_engine": "whisper-tiny.en"}}
    pal.save()
    r = api.post("/v2/conversations", {"face_id": face.id, "pal_id": pal.id, "properties": {"language": "spanish"}},
                 format="json")
    assert r.status_code == 400 and "whisper-tiny.en hears only en" in r.json()["error"], r.json()
    ok = api.post("/v2/conversations", {"face_id": face.id, "pal_id": pal.id, "properties": {"language": "english"}},
                  format="json")
    assert ok.status_code in (200, 201), ok.json()
    # without an engine named, a Spanish call gets Whisper base
    pal.layers = {}
    pal.save()
    r = api.post("/v2/conversations", {"face_id": face.id, "pal_id": pal.id, "properties": {"language": "spanish"}},
                 format="json")
    assert r.status_code in (200, 201), r.json()
