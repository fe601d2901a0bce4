"""Two server processes sharing Redis (and one database): REST `end` sent to one process ends
the live call held by the other; the call's timers end it with the documented reasons."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.client import CVIClient, WebsocketSignalling
from tests.live import ROOT, free_port, start_site

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_sites(tmp_path_factory, redis_url):
    data = tmp_path_factory.mktemp("two-procs")
    site_a = start_site(data, env_overrides={"REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"})
    # Stock face ready without its assets: these calls are audio-only.
    site_a.manage("shell", "-c", "from faces.models import Face; Face.objects.filter(pk='rstock000001').update(status='ready')")
    port_b = free_port()
    proc_b = subprocess.Popen([str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port_b),
                               "cvi_site.asgi:application"], cwd=ROOT, env=site_a.env,
                              stdout=open(data / "daphne-b.log", "w"), stderr=subprocess.STDOUT)
    site_a.procs.append(proc_b)
    url_b = f"http://127.0.0.1:{port_b}"
    for _ in range(100):
        try:
            if httpx.get(url_b + "/v2/openapi.yaml", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    yield site_a, url_b
    site_a.stop()


def _create(site, **extra) -> str:
    r = httpx.post(site.url + "/v2/conversations", headers={"x-api-key": site.api_key}, timeout=30,
                   json={"persona_id": "pstock000001", "replica_id": "rstock000001", "audio_only": True,
                         "custom_greeting": "Hello.", **extra})
    assert r.status_code == 200, r.text
    return r.json()["conversation_id"]


async def _join(site, conversation_id: str) -> CVIClient:
    signalling = WebsocketSignalling(site.url.replace("http", "ws") + f"/ws/conversations/{conversation_id}/")
    await signalling.open()
    client = CVIClient(signalling, keep_audio=False)
    await client.connect(timeout=60)
    return client


def _wait_ended(client: CVIClient, timeout: float):
    async def wait():
        deadline = time.monotonic() + timeout
        while client.ended is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return client.ended
    return wait()


def test_rest_end_on_another_process_ends_the_live_call(two_sites):
    site_a, url_b = two_sites
    cid = _create(site_a)

    async def scenario():
        client = await _join(site_a, cid)  # the session lives in process A
        try:
            await client.wait_event("system.replica_joined", timeout=30)
            r = await asyncio.to_thread(httpx.post, f"{url_b}/v2/conversations/{cid}/end",
                                        headers={"x-api-key": site_a.api_key}, timeout=30)
            assert r.status_code == 200 and r.json()["status"] == "ended"
            return await _wait_ended(client, 15)
        finally:
            await client.close()

    reason = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert reason == "end_conversation_endpoint_hit"
    got = httpx.get(f"{url_b}/v2/conversations/{cid}?verbose=true", headers={"x-api-key": site_a.api_key}).json()
    assert got["shutdown_reason"] == "end_conversation_endpoint_hit"
    assert [e["event_type"] for e in got["events"]].count("system.shutdown") == 1


def test_max_call_duration_ends_the_call(two_sites):
    site_a, _ = two_sites
    cid = _create(site_a, properties={"max_call_duration": 10})

    async def scenario():
        client = await _join(site_a, cid)
        try:
            started = time.monotonic()
            reason = await _wait_ended(client, 40)
            return reason, time.monotonic() - started
        finally:
            await client.close()

    reason, elapsed = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert reason == "max_call_duration reached"
    assert 8 <= elapsed <= 25
    got = httpx.get(f"{site_a.url}/v2/conversations/{cid}", headers={"x-api-key": site_a.api_key}).json()
    assert got["status"] == "ended" and got["shutdown_reason"] == "max_call_duration reached"


def test_participant_left_timeout_ends_after_the_last_person_leaves(two_sites):
    site_a, _ = two_sites
    cid = _create(site_a, properties={"participant_left_timeout": 3})

    async def scenario():
        client = await _join(site_a, cid)
        await client.wait_event("system.replica_joined", timeout=30)
        await client.close()
        left = time.monotonic()
        headers = {"x-api-key": site_a.api_key}
        while time.monotonic() - left < 20:
            r = await asyncio.to_thread(httpx.get, f"{site_a.url}/v2/conversations/{cid}", headers=headers)
            if r.json()["status"] == "ended":
                return r.json()["shutdown_reason"], time.monotonic() - left
            await asyncio.sleep(0.25)
        return None, None

    reason, elapsed = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert reason == "participant_left_timeout reached"
    assert 2.5 <= elapsed <= 10


@pytest.mark.django_db
def test_absent_timeout_sweeper_ends_conversations_nobody_joined(account):
    from datetime import timedelta

    from django.utils import timezone

    from conversations.models import Conversation
    from conversations.services import conversation_create, conversation_fail_stale
    from tests.factories import make_face, make_pal

    face = make_face(account=account)
    pal = make_pal(account=account, face=face)
    conv = conversation_create(account=account, data={"face_id": face.id, "pal_id": pal.id,
                                                      "properties": {"participant_absent_timeout": 60}})
    assert conversation_fail_stale() == 0
    assert conversation_fail_stale(now=timezone.now() + timedelta(seconds=61)) == 1
    conv.refresh_from_db()
    assert conv.status == Conversation.Status.ENDED
    assert conv.shutdown_reason == "participant_absent_timeout reached"
