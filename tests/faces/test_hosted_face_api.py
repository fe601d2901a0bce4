"""The hosted face (replica) requests as its docs write them: model_name, voice_name from an image,
the hosted status names in responses and filters."""
from __future__ import annotations

import pytest

from faces.models import Face
from tests.factories import make_face

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    jobs = []
    monkeypatch.setattr("faces.tasks.face_training_start.delay", lambda face_id: jobs.append(face_id))
    return jobs


def test_image_with_voice_name_and_model_name_as_the_hosted_docs_write_it(api, queued,
                                                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post("/v2/replicas", {"callback_url": "", "replica_name": "my_image_replica",
                                      "train_image_url": "https://example.com/headshot.png",
                                      "voice_name": "en-gb", "model_name": "phoenix-3"}, format="json")
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["status"] == "started" and body["model_name"] == "phoenix-3"
    assert len(body["warnings"]) == 1 and "model_name phoenix-3" in body["warnings"][0]
    assert queued == [body["replica_id"]]
    got = api.get(f"/v2/replicas/{body['replica_id']}").json()
    assert got["model_name"] == "phoenix-3" and got["voice_name"] == "en-gb"


def test_the_default_model_name_is_the_hosted_default(api, queued):
    r = api.post("/v2/faces", {"train_video_url": "https://example.com/me.mp4"}, format="json")
    assert r.status_code == 200 and r.json()["model_name"] == "phoenix-4"
    assert api.get(f"/v2/faces/{r.json()['face_id']}").json()["model_name"] == "phoenix-4"


@pytest.mark.parametrize("body, field, needle", [
    ({"model_name": "phoenix-9"}, "model_name", "phoenix-9"),
    ({"voice_name": "anna"}, "voice_name", "no voice 'anna' is installed here"),
])
def test_a_model_or_voice_that_does_not_exist_here_is_a_400_naming_it(api, queued, body, field, needle):
    r = api.post("/v2/faces", {"train_image_url": "https://example.com/me.png", **body}, format="json")
    assert r.status_code == 400
    assert field in r.json()["error"] and needle in r.json()["error"]
    assert not Face.objects.filter(account__isnull=False).exists() and queued == []


def test_status_is_the_hosted_name_and_ours_stays_readable(api, account):
    ready = make_face(account=account, status=Face.Status.READY)
    training = make_face(account=account, status=Face.Status.TRAINING)
    got = api.get(f"/v2/replicas/{ready.id}").json()
    assert got["status"] == "completed" and got["training_status"] == "ready"
    got = api.get(f"/v2/faces/{training.id}").json()
    assert got["status"] == "training" and got["training_status"] == "training"


@pytest.mark.parametrize("wanted", ["completed", "ready"])
def test_the_list_filters_by_either_name(api, account, wanted):
    ready = make_face(account=account, status=Face.Status.READY)
    make_face(account=account, status=Face.Status.ERROR)
    ids = [f["face_id"] for f in api.get(f"/v2/replicas?status={wanted}").json()["data"]]
    assert ready.id in ids and all(
        f["status"] == "completed" for f in api.get(f"/v2/replicas?status={wanted}").json()["data"])
    assert Face.objects.filter(pk__in=ids).exclude(status=Face.Status.READY).count() == 0


def test_an_unknown_status_filter_is_a_400(api):
    r = api.get("/v2/faces?status=done")
    assert r.status_code == 400 and "status must be one of" in r.json()["error"]
