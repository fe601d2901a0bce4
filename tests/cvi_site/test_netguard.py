"""ALLOW_PRIVATE_URLS off: remote engines, face downloads and webhooks refuse private
addresses, redirects included, with an error that says why; on (the default) nothing changes."""
from __future__ import annotations

import asyncio

import httpx
import pytest

from conversations.realtime.engines.base import EngineError, VoiceOptions
from conversations.realtime.engines.cloud_tts import OpenAISpeechTTS
from conversations.realtime.engines.openai_llm import OpenAILLM
from cvi_site import netguard

PUBLIC = "93.184.216.34"  # a literal public address: checked without any DNS or network


@pytest.fixture
def private_refused():
    netguard.configure(allow_private=False)
    yield
    netguard.configure(allow_private=True)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/v1", "http://10.1.2.3/", "http://[::1]:8000/",
                                 "http://169.254.169.254/latest/meta-data", "http://localhost:8000/"])
def test_private_addresses_are_refused(private_refused, url):
    with pytest.raises(netguard.PrivateAddressRefused, match="private address"):
        netguard.check_request(httpx.Request("GET", url))
    with pytest.raises(netguard.PrivateAddressRefused):
        asyncio.run(netguard.acheck_request(httpx.Request("GET", url)))


def test_public_addresses_pass_and_nothing_is_checked_by_default(private_refused):
    netguard.check_request(httpx.Request("GET", f"http://{PUBLIC}/"))
    netguard.configure(allow_private=True)
    netguard.check_request(httpx.Request("GET", "http://127.0.0.1/"))


def test_a_redirect_to_a_private_address_is_refused(private_refused):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == PUBLIC:
            return httpx.Response(302, headers={"Location": "http://127.0.0.1:8000/admin"})
        return httpx.Response(200, text="internal")

    with netguard.client(transport=httpx.MockTransport(handler), follow_redirects=True) as client:
        with pytest.raises(netguard.PrivateAddressRefused, match="127.0.0.1"):
            client.get(f"http://{PUBLIC}/video.mp4")


def test_remote_engines_report_the_refusal(private_refused):
    async def llm():
        engine = OpenAILLM(base_url="http://127.0.0.1:9/v1", model="m")
        try:
            return [d async for d in engine.stream([{"role": "user", "content": "hi"}])]
        finally:
            await engine.aclose()

    with pytest.raises(EngineError, match="private address"):
        asyncio.run(llm())

    async def tts():
        engine = OpenAISpeechTTS(base_url="http://127.0.0.1:9/v1")
        try:
            return [c async for c in engine.synthesize("hi", voice=VoiceOptions())]
        finally:
            await engine.aclose()

    with pytest.raises(EngineError, match="private address"):
        asyncio.run(tts())


def test_face_downloads_refuse_private_addresses(private_refused, tmp_path):
    """(Webhooks: tests/cvi_site/test_webhooks.py, a private receiver is recorded and never tried.)"""
    from faces.training import TrainingError
    from faces.training_job import _download

    with pytest.raises(TrainingError, match="private address") as err:
        _download("http://127.0.0.1:9/video.mp4", tmp_path / "v.mp4", kind="video")
    assert err.value.code == "download_link"


def test_the_setting_reaches_the_guard(settings):
    from django.apps import apps

    assert netguard.allow_private() is True  # the default: a self-hosted box talks to its LAN
    settings.ALLOW_PRIVATE_URLS = False
    apps.get_app_config("conversations").ready()
    try:
        assert netguard.allow_private() is False
    finally:
        settings.ALLOW_PRIVATE_URLS = True
        apps.get_app_config("conversations").ready()


@pytest.mark.django_db
def test_urls_are_checked_when_they_are_saved_not_only_when_used(private_refused, api, account):
    """With ALLOW_PRIVATE_URLS off, a private address is refused at save time (a 400 naming the
    field), for every URL field; schemes other than http(s) are refused whatever the setting."""
    from tests.factories import make_face, make_pal

    r = api.post("/v2/pals", {"system_prompt": "x", "layers": {"llm": {"base_url": "http://127.0.0.1:9/v1",
                                                                        "model": "m"}}}, format="json")
    assert r.status_code == 400 and "private address" in str(r.json())
    r = api.post("/v2/pals", {"system_prompt": "x", "layers": {"stt": {
        "stt_engine": "azure-stt", "api_key": "k", "base_url": "wss://10.1.2.3/stt"}}}, format="json")
    assert r.status_code == 400 and "private address" in str(r.json())
    r = api.post("/v2/faces", {"train_video_url": "http://192.168.1.20/me.mp4"}, format="json")
    assert r.status_code == 400 and "private address" in str(r.json())
    face = make_face(account=account)
    pal = make_pal(account=account, face=face)
    r = api.post("/v2/conversations", {"persona_id": pal.id, "replica_id": face.id,
                                       "callback_url": "http://localhost:8000/hook"}, format="json")
    assert r.status_code == 400 and "private address" in str(r.json())
    netguard.configure(allow_private=True)
    r = api.post("/v2/faces", {"train_video_url": "ftp://example.com/me.mp4"}, format="json")
    assert r.status_code == 400 and "must be an http(s) URL" in str(r.json())
