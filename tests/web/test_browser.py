"""The PAL Maker in a real browser (Debian's Chromium driven by Playwright) against the real
site (Daphne + a Celery worker in subprocesses, SQLite, the embedded in-memory channel layer),
with a real OpenAI-compatible LLM server (llama.cpp's, on the embedded Qwen GGUF).

One walk through the product, in order: sign in; create a PAL whose LLM is the local
endpoint, see a validation error beside the field and fix it; test the connection (a streamed
reply); preview a voice (the audio element gets a playable source); train a face and watch
the progress bar, pushed over the WebSocket, reach ready; press "talk now" and reach the
conversation page; open the transcript page. Every page is saved as a screenshot under
artifacts/web/ (look at them).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import pytest

from tests.live import ROOT, start_site
from tests.web.support import (ARTIFACTS, CHROMIUM_ARGS, require_chromium, shot, start_llm_server,
                               training_installed)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

USERNAME, PASSWORD = "ada", "browser-test-password-1"


@pytest.fixture(scope="module")
def chromium_path() -> str:
    return require_chromium()


@pytest.fixture(scope="module")
def llm_server():
    """llama.cpp's OpenAI-compatible server on the embedded GGUF (one thread: the site needs the other core)."""
    from django.conf import settings

    server = start_llm_server(settings.MODELS_DIR)
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from django.conf import settings

    data = tmp_path_factory.mktemp("web-live")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # Share the assembled models (hundreds of MB) instead of assembling them again.
    (data / "models").symlink_to(Path(settings.MODELS_DIR).resolve(), target_is_directory=True)
    training = training_installed()
    live = start_site(data, worker=True, setup=training)
    try:
        live.manage("shell", "-c", (
            "from cvi_site.services import account_create; "
            f"account_create(username={USERNAME!r}, password={PASSWORD!r})"))
        live.training = training
        live.data_dir = data
        yield live
    finally:
        live.stop()
        for name in ("daphne.log", "worker.log"):
            if (data / name).exists():
                shutil.copy(data / name, ARTIFACTS / name)


@pytest.fixture(scope="module")
def training_file(tmp_path_factory, site) -> Path:
    """A short synthetic talking video (the stock face animated in time with eSpeak NG speech,
    with a listening part), made with the faces package's generator; a photo without it."""
    out = tmp_path_factory.mktemp("face-upload")
    if site.training:
        from bench.face_video import make_training_video
        from faces.training import load_assets

        stock = load_assets(site.data_dir / "faces" / "rstock000001")
        return Path(make_training_video(out / "talking.mp4", stock))
    from PIL import Image
    from skimage import data as skdata

    path = out / "portrait.png"
    Image.fromarray(skdata.astronaut()).save(path)
    return path


def test_pal_maker_in_a_browser(chromium_path, llm_server, site, training_file):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=site.url)
        context.set_default_timeout(20_000)
        page = context.new_page()
        console_errors: list[str] = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        try:
            _walk(page, expect, site, llm_server, training_file)
        except Exception:
            shot(page, "failure", full_page=True)
            raise
        finally:
            context.close()
            browser.close()
        # favicon-less pages and media permission noise aside, the pages log no script errors
        assert not [e for e in console_errors if "palmaker" in e or "Uncaught" in e], console_errors


def _walk(page, expect, site, llm_url: str, training_file: Path) -> None:
    # ---------------------------------------------------------------- sign in
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    shot(page, "01_sign_in")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Hello, {USERNAME}")).to_be_visible()
    css = page.evaluate("getComputedStyle(document.querySelector('.topbar')).backgroundColor")
    assert css == "rgb(17, 24, 39)", "the stylesheet did not load"
    shot(page, "02_home")

    # ---------------------------------------------------------------- a PAL with a custom LLM endpoint
    page.get_by_role("link", name="PALs", exact=True).click()
    shot(page, "03_pal_list")
    page.get_by_role("link", name="+ New PAL").click()
    page.get_by_label("Name", exact=True).fill("Ada the tutor")
    page.get_by_label("System prompt").fill("You are Ada, a patient maths tutor. Answer in one or two short sentences.")
    page.get_by_label("Greeting").fill("Hi, I'm Ada. What shall we practise today?")
    page.get_by_label("Turn-taking patience").select_option("high")
    page.locator("#flow").scroll_into_view_if_needed()
    shot(page, "03b_pal_flow_choices")
    page.get_by_label("An OpenAI-compatible endpoint").check()
    base_url = page.get_by_label("Base URL", exact=True)
    expect(base_url).to_be_visible()  # shown once "endpoint" is chosen
    port = llm_url.split(":")[2].split("/")[0]
    base_url.fill(f"127.0.0.1:{port}/v1")  # no scheme: the service refuses it
    page.get_by_label("Model name").fill("local-qwen")
    page.get_by_label("Voice", exact=True).fill("en-gb")
    page.get_by_label("Speed").fill("1.1")
    page.get_by_role("button", name="Create PAL").first.click()

    error = page.locator("#field-llm_base_url .errors")
    expect(error).to_contain_text("must be an http(s) URL")
    expect(page.locator("#form-errors")).to_be_visible()
    error.scroll_into_view_if_needed()
    shot(page, "04_pal_validation_error")

    page.get_by_label("Base URL", exact=True).fill(llm_url)
    # the editor kept everything typed before the error
    expect(page.get_by_label("Model name")).to_have_value("local-qwen")
    page.get_by_role("button", name="Test connection").click()
    output = page.locator("#llm-test-output")
    expect(output).to_have_attribute("data-done", "1", timeout=180_000)
    text = output.inner_text()
    assert "Asking " + llm_url in text and "✓ The model answered." in text, text
    output.scroll_into_view_if_needed()
    shot(page, "05_pal_test_connection")

    page.get_by_role("button", name="Preview voice").click()
    audio = page.locator("#voice-preview")
    page.wait_for_function("() => { const a = document.querySelector('#voice-preview');"
                           " return a.src.startsWith('blob:') && a.readyState >= 1 && a.duration > 1; }",
                           timeout=60_000)
    duration = audio.evaluate("a => a.duration")
    assert duration > 1.5, duration
    assert page.locator("#voice-preview-error").inner_text() == ""
    audio.scroll_into_view_if_needed()
    shot(page, "06_pal_voice_preview")

    # Perception: as queries are typed, the editor says which the embedded engine can answer.
    page.get_by_label("Visual awareness questions (one per line)").fill(
        "Is the user smiling?\nWhat colour is the user's shirt?")
    coverage = page.locator("#perception-coverage")
    expect(coverage.locator("li.no")).to_contain_text("What colour is the user's shirt?", timeout=10_000)
    expect(coverage.locator("li.ok")).to_contain_text("Is the user smiling?")
    coverage.scroll_into_view_if_needed()
    shot(page, "06b_pal_perception")

    page.get_by_role("button", name="Create PAL").first.click()
    expect(page.locator(".flash-success")).to_contain_text("Created Ada the tutor")
    pal_url = page.url
    assert re.search(r"/pals/p[0-9a-f]+/$", pal_url), pal_url
    page.locator("#llm").scroll_into_view_if_needed()
    shot(page, "07_pal_editor")
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "07_pal_editor_top")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    shot(page, "07_pal_editor_phone")
    page.set_viewport_size({"width": 1280, "height": 860})

    # ---------------------------------------------------------------- train a face, watch it over the WebSocket
    page.get_by_role("link", name="Faces", exact=True).click()
    page.get_by_role("link", name="+ Train a face").click()
    page.get_by_label("Name", exact=True).fill("Eileen (trained in the browser)")
    page.get_by_label("Training video or photo").set_input_files(str(training_file))
    expect(page.locator("#file-checks li.ok").first).to_be_visible()
    page.get_by_label("I am the person in this recording").check()
    shot(page, "08_face_train")
    page.get_by_role("button", name="Upload and train").click()
    expect(page).to_have_url(re.compile(r"/faces/r[0-9a-f]+/$"))
    face_url = page.url
    face_path = face_url.replace(site.url, "")
    live = page.locator("#face-live")
    expect(live).to_have_attribute("data-ws", "open")
    # from here on the page must not ask the server for the face's state: it is pushed
    polled: list[str] = []
    page.on("request", lambda r: polled.append(r.url) if r.url.rstrip("/").endswith(face_path.rstrip("/")) else None)
    simulator = None
    if not site.training:
        # The training code (faces.training) is not installed in this checkout, so the job
        # cannot run. Stand in for the worker with another process that writes progress to
        # the database the way the job does: the page must still follow it over the socket.
        warnings.warn("faces.training is not installed: face progress is simulated by another process")
        simulator = subprocess.Popen([sys.executable, "manage.py", "shell", "-c", _SIMULATE_TRAINING.format(
            fid=face_path.strip("/").rsplit("/", 1)[1])], cwd=ROOT, env=site.env)
    took_mid = False
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = live.get_attribute("data-status") or ""
        progress = int(page.locator("[data-face-progress]").get_attribute("aria-valuenow") or 0)
        if not took_mid and status == "training" and 0 < progress < 100:
            shot(page, "09_face_training_progress")
            took_mid = True
        if status in ("ready", "error"):
            break
        page.wait_for_timeout(250)
    if simulator is not None:
        simulator.wait(timeout=60)
    updates = page.evaluate("window.__faceUpdates")
    status = live.get_attribute("data-status")
    page.wait_for_timeout(600)  # the bar's width animates
    shot(page, "10_face_trained")
    assert not polled, f"the page polled the face: {polled}"
    progress_seen = sorted({u["progress"] for u in updates if u["status"] == "training"})
    assert status == "ready", (status, page.locator("[data-face-error]").inner_text())
    assert len(progress_seen) >= 2, f"progress did not move: {updates}"
    expect(page.locator("[data-face-progress]")).to_have_attribute("aria-valuenow", "100")
    if site.training:
        expect(page.locator("[data-face-media] img, [data-face-media] video").first).to_be_visible()

    page.get_by_role("link", name="Faces", exact=True).click()
    shot(page, "11_face_gallery")
    face_id = face_url.rstrip("/").rsplit("/", 1)[1]

    # ---------------------------------------------------------------- choose the face, talk now
    page.goto(pal_url)
    page.get_by_label("Default face").select_option(face_id)
    page.get_by_role("button", name="Save changes").first.click()
    expect(page.locator(".flash-success")).to_contain_text("Saved")
    page.get_by_role("button", name="▶ Talk now").click()
    expect(page).to_have_url(re.compile(r"/c/c[0-9a-f]+/$"), timeout=30_000)
    conversation_id = page.url.rstrip("/").rsplit("/", 1)[1]
    page.wait_for_timeout(1500)
    shot(page, "12_conversation_page")

    # ---------------------------------------------------------------- the transcript page
    # The turns a live call would have stored (the call itself is the transport's test).
    site.manage("shell", "-c", _SEED_TRANSCRIPT.format(cid=conversation_id))
    page.goto("/conversations/")
    expect(page.get_by_role("link", name=re.compile("Practice call"))).to_be_visible()
    shot(page, "13_conversation_list")
    page.get_by_role("link", name=re.compile("Practice call")).click()
    expect(page.locator("#transcript").get_by_text("What is seven times eight?")).to_be_visible()
    chart = page.locator('[data-testid="latency-chart"]')
    expect(chart).to_be_visible()
    assert chart.locator("rect").count() >= 12
    shot(page, "14_conversation_transcript", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    shot(page, "15_conversation_transcript_phone")
    page.set_viewport_size({"width": 1280, "height": 860})

    # ---------------------------------------------------------------- API keys
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name of a new key").fill("browser test")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key-value").inner_text()
    assert key.startswith("cvi_")
    assert httpx.get(site.url + "/v2/pals", headers={"x-api-key": key}).status_code == 200
    shot(page, "16_api_keys")


_SIMULATE_TRAINING = """
import time
from django.utils import timezone
from faces.models import Face
Face.objects.filter(pk={fid!r}).update(status='training', training_progress=0, training_started_at=timezone.now())
for p in (8, 17, 31, 46, 58, 73, 88, 96):
    time.sleep(0.7)
    Face.objects.filter(pk={fid!r}).update(training_progress=p, updated_at=timezone.now())
time.sleep(0.7)
Face.objects.filter(pk={fid!r}).update(status='ready', training_progress=100, training_finished_at=timezone.now())
"""

_SEED_TRANSCRIPT = """
from conversations.models import Conversation
from conversations.services import utterance_record, event_record, conversation_end
from datetime import timedelta
from django.utils import timezone
c = Conversation.objects.get(pk={cid!r})
Conversation.objects.filter(pk=c.pk).update(conversation_name='Practice call', started_at=timezone.now() - timedelta(seconds=34))
turns = [
  ('What is seven times eight?', 'Seven times eight is fifty-six.', dict(turn_decided_ms=610, transcript_final_ms=520, llm_started_ms=250, llm_first_token_ms=690, first_phrase_ms=905, tts_first_audio_ms=921, u2u_ms=958, stt_ms=284, speculative=True)),
  ('And nine times nine?', 'Nine times nine is eighty-one.', dict(turn_decided_ms=505, transcript_final_ms=798, llm_started_ms=798, llm_first_token_ms=860, first_phrase_ms=1104, tts_first_audio_ms=1119, u2u_ms=1160, stt_ms=293)),
  ('Can you give me a harder one?', 'Sure: what is twelve times fourteen?', dict(turn_decided_ms=930, transcript_final_ms=820, llm_started_ms=300, llm_first_token_ms=980, first_phrase_ms=1190, tts_first_audio_ms=1204, u2u_ms=1241, stt_ms=301, speculative=True)),
  ('Um, one hundred and sixty eight?', 'Exactly right, well done!', dict(turn_decided_ms=1650, transcript_final_ms=1402, llm_started_ms=1402, llm_first_token_ms=1720, first_phrase_ms=1871, tts_first_audio_ms=1885, u2u_ms=1930, stt_ms=310)),
]
t = 2.0
event_record(conversation=c, message_type='system', event_type='system.replica_joined', properties={{'replica_id': c.face_id}})
for i, (q, a, lat) in enumerate(turns, start=1):
    utterance_record(conversation_id=c.pk, role='user', content=q, seconds_from_start=t, turn_idx=i)
    utterance_record(conversation_id=c.pk, role='assistant', content=a, seconds_from_start=t + lat['u2u_ms'] / 1000 + 1.5, turn_idx=i, latency=lat)
    t += 7.5
conversation_end(conversation=c)
"""
