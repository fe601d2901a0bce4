from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from faces.models import Face
from tests.factories import make_face

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    """Capture the training jobs a create enqueues (the worker is tested elsewhere)."""
    jobs = []
    monkeypatch.setattr("faces.tasks.face_training_start.delay", lambda face_id: jobs.append(face_id))
    return jobs


def test_create_from_url_enqueues_training(api, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post("/v2/faces", {"train_video_url": "https://example.com/me.mp4", "face_name": "Me"}, format="json")
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["status"] == "started" and body["face_id"].startswith("r") and body["replica_id"] == body["face_id"]
    assert queued == [body["face_id"]]
    got = api.get(f"/v2/faces/{body['face_id']}").json()
    assert got["face_name"] == "Me" and got["training_progress"] == "0/100" and got["face_type"] == "user"


def test_legacy_replicas_endpoint_is_the_same(api, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post("/v2/replicas", {"train_image_url": "https://example.com/me.jpg", "replica_name": "Old"}, format="json")
    assert r.status_code == 200
    face_id = r.json()["replica_id"]
    assert api.get(f"/v2/replicas/{face_id}").json() == api.get(f"/v2/faces/{face_id}").json()
    assert api.get(f"/v2/faces/{face_id}").json()["replica_name"] == "Old"


def test_multipart_upload(api, queued, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("me.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, content_type="image/png")
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post("/v2/faces", {"file": upload, "face_name": "Upload"}, format="multipart")
    assert r.status_code == 200, r.json()
    face = Face.objects.get(pk=r.json()["face_id"])
    assert face.source_type == "image" and face.source_file
    assert queued == [face.id]


@pytest.mark.parametrize(
    "body, needle",
    [
        ({}, "exactly one"),
        ({"train_video_url": "https://e.com/a.mp4", "train_image_url": "https://e.com/a.jpg"}, "exactly one"),
        ({"train_video_url": "not a url"}, "train_video_url"),
        ({"train_video_url": "https://e.com/a.mp4", "colour": "blue"}, "unknown field"),
    ],
)
def test_create_validation(api, queued, body, needle):
    r = api.post("/v2/faces", body, format="json")
    assert r.status_code == 400 and needle in r.json()["error"]
    assert queued == []


def test_upload_type_is_checked(api, queued):
    bad = SimpleUploadedFile("notes.txt", b"hello", content_type="text/plain")
    r = api.post("/v2/faces", {"file": bad}, format="multipart")
    assert r.status_code == 400 and "video_format" in r.json()["error"]


def test_list_filters_by_face_type(api, account):
    make_face(account=account, name="mine")
    system = api.get("/v2/faces?face_type=system").json()
    user = api.get("/v2/faces?face_type=user").json()
    assert {f["face_id"] for f in system["data"]} == {"rstock000001"}
    assert [f["face_name"] for f in user["data"]] == ["mine"]
    assert api.get("/v2/faces").json()["total_count"] == 2
    assert api.get("/v2/faces?face_type=alien").status_code == 400


def test_rename_and_delete(api, account):
    face = make_face(account=account, name="before")
    r = api.patch(f"/v2/faces/{face.id}", {"face_name": "after"}, format="json")
    assert r.status_code == 200 and r.json()["face_name"] == "after"
    r = api.patch(f"/v2/replicas/{face.id}/name", {"replica_name": "legacy"}, format="json")
    assert r.status_code == 200 and r.json()["face_name"] == "legacy"
    assert api.delete(f"/v2/faces/{face.id}").status_code == 204
    assert api.get(f"/v2/faces/{face.id}").status_code == 404


def test_stock_face_is_read_only(api):
    assert api.get("/v2/faces/rstock000001").json()["face_type"] == "system"
    assert api.patch("/v2/faces/rstock000001", {"face_name": "x"}, format="json").status_code == 404
    assert api.delete("/v2/faces/rstock000001").status_code == 404


def test_other_accounts_face_is_404(api, other_account):
    face = make_face(account=other_account)
    assert api.get(f"/v2/faces/{face.id}").status_code == 404
    assert api.patch(f"/v2/faces/{face.id}", {"face_name": "x"}, format="json").status_code == 404
    assert api.delete(f"/v2/faces/{face.id}").status_code == 404
    assert api.post(f"/v2/faces/{face.id}/retrain").status_code == 404


def test_retrain_requires_a_finished_face(api, account, queued, django_capture_on_commit_callbacks):
    face = make_face(account=account, status=Face.Status.TRAINING)
    Face.objects.filter(pk=face.pk).update(train_video_url="https://e.com/a.mp4")
    assert api.post(f"/v2/faces/{face.id}/retrain").status_code == 400
    Face.objects.filter(pk=face.pk).update(status=Face.Status.ERROR, error_code="video_fps")
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post(f"/v2/faces/{face.id}/retrain")
    assert r.status_code == 200 and r.json()["status"] == "started" and r.json()["error_code"] is None
    assert queued == [face.id]
