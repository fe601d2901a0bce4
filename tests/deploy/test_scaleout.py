"""The documented multi-process deployment, for real: nginx (Debian's) in front of two Daphne
processes sharing Redis (channel layer, Celery) and PostgreSQL, and one LLM service. A call made
through nginx works; REST `end` sent to the process that does not hold the call ends it."""
from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.client import CVIClient, WebsocketSignalling
from cvi_site.deploy import nginx_config
from cvi_site.llmservice import wait_for_http
from tests.conftest import require_service
from tests.live import ROOT, free_port, start_site

pytestmark = pytest.mark.slow


@pytest.fixture
def deployment(tmp_path, redis_url, postgres_database):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        require_service("nginx", "not installed (make test installs Debian's nginx)")
    site = start_site(tmp_path / "data", llm_service=True, env_overrides={
        "DATABASE_URL": postgres_database, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"})
    procs = []
    try:
        # the stock face counts as ready without its assets: these calls are audio-only
        site.manage("shell", "-c", "from faces.models import Face; "
                                   "Face.objects.filter(pk='rstock000001').update(status='ready')")
        port_b = free_port()
        daphne_b = subprocess.Popen([str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p",
                                     str(port_b), "cvi_site.asgi:application"], cwd=ROOT, env=site.env,
                                    stdout=open(tmp_path / "daphne-b.log", "w"), stderr=subprocess.STDOUT)
        procs.append(daphne_b)
        url_a, url_b = site.url, f"http://127.0.0.1:{port_b}"
        wait_for_http(url_b + "/v2/openapi.yaml", proc=daphne_b)
        ngx = tmp_path / "nginx"
        ngx.mkdir()
        port_n = free_port()
        conf = ngx / "nginx.conf"
        conf.write_text(nginx_config(listen=f"127.0.0.1:{port_n}", backends=[url_a[7:], url_b[7:]],
                                     prefix=str(ngx), daemon=False))
        proxy = subprocess.Popen([nginx, "-c", str(conf), "-p", str(ngx)], stdout=open(ngx / "out.log", "w"),
                                 stderr=subprocess.STDOUT)
        procs.append(proxy)
        url_n = f"http://127.0.0.1:{port_n}"
        wait_for_http(url_n + "/healthz", proc=proxy)
        yield site, url_a, url_b, url_n
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        site.stop()


def _live_calls(url: str) -> int:
    return httpx.get(url + "/healthz", timeout=10).json()["process"]["live_calls"]


def test_a_call_through_nginx_and_a_rest_end_through_the_other_process(deployment):
    site, url_a, url_b, url_n = deployment
    headers = {"x-api-key": site.api_key}
    health = httpx.get(url_n + "/healthz", timeout=10).json()
    assert health["status"] == "ok", health
    assert health["checks"]["database"]["detail"] == "postgresql"
    assert health["checks"]["llm_service"]["ok"]
    r = httpx.post(url_n + "/v2/conversations", headers=headers, timeout=30, json={
        "persona_id": "pstock000001", "replica_id": "rstock000001", "audio_only": True,
        "custom_greeting": "Hello there."})
    assert r.status_code == 200, r.text
    cid = r.json()["conversation_id"]

    async def scenario():
        signalling = WebsocketSignalling(url_n.replace("http", "ws") + f"/ws/conversations/{cid}/")
        await signalling.open()
        client = CVIClient(signalling, keep_audio=False)
        try:
            await client.connect(timeout=60)
            # the greeting is heard: media flows between the client and the holding process
            started, _ = await client.wait_event("conversation.replica.started_speaking", timeout=60)
            await client.wait_event("conversation.replica.stopped_speaking", timeout=60, after=started)
            assert client.first_reply_audio_after(started - 1) is not None
            # a spoken question gets an answer from the box's LLM service
            await client.send("conversation.respond", {"text": "Say hello in two words."})
            await client.wait_event("conversation.replica.started_speaking", timeout=90, after=started + 0.1)
            holders = await asyncio.to_thread(lambda: {u: _live_calls(u) for u in (url_a, url_b)})
            assert sorted(holders.values()) == [0, 1], holders
            other = next(u for u, n in holders.items() if n == 0)
            end = await asyncio.to_thread(httpx.post, f"{other}/v2/conversations/{cid}/end", headers=headers,
                                          timeout=30)
            assert end.status_code == 200 and end.json()["status"] == "ended"
            deadline = time.monotonic() + 20
            while client.ended is None and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            return client.ended, holders
        finally:
            await client.close()

    reason, holders = asyncio.run(asyncio.wait_for(scenario(), 300))
    assert reason == "end_conversation_endpoint_hit"
    holder = next(u for u, n in holders.items() if n == 1)
    deadline = time.monotonic() + 20
    while _live_calls(holder) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _live_calls(holder) == 0
    got = httpx.get(f"{url_n}/v2/conversations/{cid}?verbose=true", headers=headers, timeout=10).json()
    assert got["status"] == "ended" and got["shutdown_reason"] == "end_conversation_endpoint_hit"
    users = [u for u in got.get("transcript", []) if u.get("role") == "user"]
    assert [u["content"] for u in users] == ["Say hello in two words."]
