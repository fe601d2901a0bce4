"""One account for the API and the PAL Maker, against the real site (Daphne, a Celery worker on
Redis, headless Chromium): a person made with ``create_api_key --password`` signs in and sees the
PAL and the conversation their key made, and the webhooks that conversation sent, each try of
each, and resends one."""
from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.cvi_site.test_webhooks import Receiver
from tests.live import start_site
from tests.web.support import CHROMIUM_ARGS, require_chromium, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

USERNAME, PASSWORD = "pat", "one-account-for-both-1"


@pytest.fixture(scope="module")
def site(tmp_path_factory, redis_url):
    live = start_site(tmp_path_factory.mktemp("one-account"), worker=True, env_overrides={
        "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING", "WEBHOOK_RETRY_DELAYS": "1,1,1"})
    try:
        # The stock face counts as trained: these conversations are made and ended, never joined.
        live.manage("shell", "-c", "from faces.models import Face; Face.objects.filter(pk='rstock000001').update(status='ready')")
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def key(site) -> str:
    """``create_api_key --password``, as README's quickstart runs it (password from the environment)."""
    out = site.manage("create_api_key", USERNAME, "--create-account", "--password", env={"OPENCVI_PASSWORD": PASSWORD})
    assert out.strip().startswith("cvi_") and "\n" not in out.strip()  # only the key on stdout
    return out.strip()


def _sign_in(page, expect) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Hello, {USERNAME}")).to_be_visible()


def test_the_cli_account_signs_in_and_sees_what_its_key_made(site, key):
    chromium = require_chromium()
    from playwright.sync_api import expect, sync_playwright

    api = httpx.Client(base_url=site.url, headers={"x-api-key": key}, timeout=30)
    pal = api.post("/v2/pals", json={"pal_name": "Made by the API", "system_prompt": "You are terse.",
                                     "greeting": "Hello from the API.", "default_face_id": "rstock000001"})
    assert pal.status_code == 200, pal.text
    receiver = Receiver([503, 503, 204])  # the first event is delivered at the third try
    try:
        conv = api.post("/v2/conversations", json={"pal_id": pal.json()["pal_id"], "callback_url": receiver.url,
                                                   "conversation_name": "API call"})
        assert conv.status_code == 200, conv.text
        cid = conv.json()["conversation_id"]
        assert api.post(f"/v2/conversations/{cid}/end").status_code == 200
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sum(1 for _, b in receiver.got if b"system.shutdown" in b) < 3:
            time.sleep(0.2)
        assert sum(1 for _, b in receiver.got if b"system.shutdown" in b) >= 3, (receiver.got, site.log_tail())

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_context(base_url=site.url).new_page()
            page.set_default_timeout(30_000)
            try:
                _sign_in(page, expect)
                page.goto("/pals/")
                expect(page.get_by_role("link", name="Made by the API")).to_be_visible()
                page.goto("/conversations/")
                page.get_by_role("link", name="API call").click()
                expect(page).to_have_url(re.compile(f"/conversations/{cid}/$"))
                page.locator("#webhooks").evaluate("d => { d.open = true; }")
                hooks = page.get_by_test_id("webhooks")
                shutdown = hooks.locator("tr", has_text="system.shutdown")
                expect(shutdown).to_contain_text("delivered")
                expect(shutdown).to_contain_text("HTTP 503")
                expect(shutdown).to_contain_text("HTTP 204")
                assert shutdown.locator("li").count() == 3
                shot(page, "webhooks", full_page=True)
                before = len(receiver.got)
                shutdown.get_by_role("button", name="Resend").click()
                expect(page.get_by_text("Sending system.shutdown")).to_be_visible()
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and len(receiver.got) == before:
                    time.sleep(0.2)
                assert len(receiver.got) > before, "the resend did not reach the receiver"
                page.reload()
                expect(page.locator("#webhooks")).to_have_attribute("open", "")  # the page's fragment opens it
                expect(page.get_by_test_id("webhooks").locator("tr", has_text="system.shutdown")).to_contain_text("resend 1")
            except Exception:
                shot(page, "one-account-failure", full_page=True)
                raise
            finally:
                browser.close()
    finally:
        receiver.close()


def test_talk_now_on_a_pal_without_a_face_opens_a_call_with_the_stock_face(site, key):
    chromium = require_chromium()
    from playwright.sync_api import expect, sync_playwright

    api = httpx.Client(base_url=site.url, headers={"x-api-key": key}, timeout=30)
    pal = api.post("/v2/pals", json={"pal_name": "Faceless", "system_prompt": "You are terse."})
    assert pal.status_code == 200 and not pal.json().get("default_face_id"), pal.text
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_context(base_url=site.url).new_page()
        page.set_default_timeout(30_000)
        try:
            _sign_in(page, expect)
            page.goto(f"/pals/{pal.json()['pal_id']}/")
            page.get_by_role("button", name="▶ Talk now").click()
            expect(page).to_have_url(re.compile(r"/c/c[0-9a-f]+/$"))
            expect(page).to_have_title(re.compile("Faceless"))
        finally:
            browser.close()
    cid = page.url.rstrip("/").rsplit("/", 1)[1]
    assert api.get(f"/v2/conversations/{cid}").json()["replica_id"] == "rstock000001"


def _video(path, *, fps: int, seconds: float, codec: str) -> str:
    """A small video of a moving square (PyAV)."""
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(int(fps * seconds)):
            frame = np.full((240, 320, 3), 90, np.uint8)
            x = (i * 7) % 280
            frame[100:140, x:x + 40] = 230
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return str(path)


def test_the_upload_page_checks_frame_rate_and_length_before_uploading(site, key, tmp_path):
    """The trainer refuses videos under 20 fps or 10 s: the page says so before sending a byte,
    reading the frame rate from an MP4's sample table, or by timing a WebM's frames."""
    chromium = require_chromium()
    from playwright.sync_api import expect, sync_playwright

    slow = _video(tmp_path / "slow.mp4", fps=12, seconds=12, codec="h264")
    short = _video(tmp_path / "short.webm", fps=25, seconds=4, codec="libvpx")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_context(base_url=site.url).new_page()
        page.set_default_timeout(30_000)
        uploads: list[str] = []
        page.on("request", lambda r: uploads.append(r.url) if r.method == "POST" and "/faces/" in r.url else None)
        try:
            _sign_in(page, expect)
            page.goto("/faces/train/")
            page.get_by_label("Name", exact=True).fill("Too slow")
            page.get_by_label("Training video or photo").set_input_files(slow)
            checks = page.locator("#file-checks")
            expect(checks.locator("li.bad")).to_contain_text("12 frames per second; the trainer needs 20 or more")
            expect(checks.locator("li.bad")).to_have_count(1)  # 12 s passes (with advice to record longer)
            page.get_by_label("I am the person in this recording").check()
            page.get_by_role("button", name="Upload and train").click()
            expect(page).to_have_url(re.compile("/faces/train/$"))  # held back
            page.get_by_label("Training video or photo").set_input_files(short)
            expect(checks.locator("li.bad")).to_contain_text("the trainer needs at least 10 s")
            expect(checks.locator("li.ok", has_text="25 frames per second")).to_be_visible()
            shot(page, "upload-checks")
        finally:
            browser.close()
    assert uploads == []
