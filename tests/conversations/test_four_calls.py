"""Four calls held by one box for a minute with face video, through the benchmark's own path
(a live site with its LLM service, one real aiortc client process per participant): no
transport dies, every call is answered, nothing is left behind. (Before the datagram drain every
transport died ~33 s in.) Speed is the benchmark's business: this test asserts survival."""
from __future__ import annotations

import json

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.slow


def test_four_calls_with_face_video_survive_a_minute(tmp_path, monkeypatch):
    monkeypatch.setenv("MAX_LIVE_CALLS_PER_PROCESS", "4")  # the started site admits four
    out = tmp_path / "four.json"
    call_command("bench_u2u", minutes=1, concurrency=4, json_path=str(out), log_level="WARNING")
    data = json.loads(out.read_text())
    assert data["refused_calls"] == 0
    assert data["dropped_calls"] == 0, data["drops"]
    assert data["turns"] >= 4 and data["turns_asked"] >= 4  # every call talked and was answered
    assert len(data["video_fps"]["per_call"]) == 4 and min(data["video_fps"]["per_call"]) > 0
    assert data["sessions_left"] == 0
    assert data["server_event_loop"]["longest_ms"] is not None  # the monitor saw the calls
