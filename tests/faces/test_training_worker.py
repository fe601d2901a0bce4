"""Face training end to end: uploads through the REST API, jobs through a real Celery worker on
Redis, progress observed moving, and the documented error codes for bad videos. (The training
functions themselves: test_training_video / test_training_photo.)"""
from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.live import start_site

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def videos(training_videos):
    return training_videos


@pytest.fixture(scope="module")
def site(tmp_path_factory, redis_url):
    site = start_site(tmp_path_factory.mktemp("train-site"), worker=True,
                      env_overrides={"REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"})
    yield site
    site.stop()


def _upload(site, path: Path) -> str:
    with open(path, "rb") as fh:
        r = httpx.post(site.url + "/v2/faces", headers={"x-api-key": site.api_key}, timeout=60,
                       data={"face_name": path.stem}, files={"file": (path.name, fh, "video/mp4")})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "started"
    return r.json()["face_id"]


def _watch(site, face_id: str, timeout: float = 240) -> tuple[dict, list[int]]:
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        face = httpx.get(f"{site.url}/v2/faces/{face_id}", headers={"x-api-key": site.api_key}, timeout=30).json()
        progress = int(face["training_progress"].split("/")[0])
        if not seen or seen[-1] != progress:
            seen.append(progress)
        if face["training_status"] in ("ready", "error"):
            return face, seen
        time.sleep(0.2)
    raise AssertionError(f"face {face_id} still {face['status']} after {timeout}s; progress {seen}")


def test_synthetic_talking_video_trains_to_ready_through_the_worker(site, videos):
    face_id = _upload(site, videos["good"])
    face, seen = _watch(site, face_id)
    assert face["status"] == "completed" and face["training_status"] == "ready", face
    assert face["training_progress"] == "100/100"
    assert len([p for p in seen if 0 < p < 100]) >= 2, f"progress did not move: {seen}"
    assert seen == sorted(seen)
    thumb = httpx.get(f"{site.url}/v2/faces/{face_id}/thumbnail", headers={"x-api-key": site.api_key}, timeout=30)
    assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"
    preview = httpx.get(f"{site.url}/v2/faces/{face_id}/preview", headers={"x-api-key": site.api_key}, timeout=30)
    assert preview.status_code == 200 and b"ftyp" in preview.content[:64]


@pytest.mark.parametrize("name, code", [
    ("two", "second_person_detected"),
    ("none", "no_face_detected"),
    ("slow", "video_fps"),
    ("garbage", "video_format"),
])
def test_bad_videos_end_in_error_with_the_right_code(site, videos, name, code):
    face_id = _upload(site, videos[name])
    face, _ = _watch(site, face_id)
    assert face["status"] == "error"
    assert face["error_code"] == code, face
    assert face["error_message"]
