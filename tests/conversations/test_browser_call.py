"""A real browser holds a conversation: headless Debian Chromium (driven by Playwright's Python
driver) opens the ``conversation_url`` of a real site (Daphne + the embedded engines + the stock
face), with a fake camera and eSpeak NG speech as its microphone, joins, and sees the face
video playing, a caption of its own words and one of the reply.

Artifacts: artifacts/conversations/conversation_page.png (look at it), user_speech.wav,
browser_call_events.json.
"""
from __future__ import annotations

import json
import time
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.live import ROOT, start_site

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts" / "conversations"
USER_SENTENCE = "What is the capital city of France?"
USER_WORDS = ("capital", "france")
FAKE_MIC_RATE = 16_000


def chromium_args(wav: Path | None = None) -> list[str]:
    args = ["--headless=new", "--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run"]
    if wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={wav}")
    return args


def launch_chromium(playwright, wav: Path | None = None):
    """Debian's Chromium only: Playwright must never download a browser."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make sysdeps-test)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=chromium_args(wav))


def write_speech_wav(path: Path, text: str, *, lead_s: float = 12.0, tail_s: float = 18.0) -> Path:
    """eSpeak NG speech as a 16 kHz mono WAV for Chromium's fake microphone.

    Chromium plays it from when the page opens the microphone (the join screen's preview) and
    loops it: the lead-in lets the join, the model loading and the greeting pass first, and the
    long silence after the sentence leaves the replica time to answer before it comes back.
    """
    from conversations.realtime.audio import resample
    from conversations.realtime.engines.base import VoiceOptions
    from conversations.realtime.engines.registry import get_tts

    chunks = get_tts().synthesize_blocking(text, voice=VoiceOptions(voice="en-us", language="en"))
    pcm = np.concatenate([c.pcm for c in chunks]).astype(np.float32) / 32768
    speech = resample(pcm, chunks[0].sample_rate, FAKE_MIC_RATE)
    audio = np.concatenate([np.zeros(int(lead_s * FAKE_MIC_RATE), np.float32), speech,
                            np.zeros(int(tail_s * FAKE_MIC_RATE), np.float32)])
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(FAKE_MIC_RATE)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def create_conversation(site, **body) -> dict:
    payload = {"face_id": "rstock000001", "pal_id": "pstock000001",
               "properties": {"enable_closed_captions": True, "participant_absent_timeout": 600}}
    payload.update(body)
    r = httpx.post(site.url + "/v2/conversations", json=payload, headers={"x-api-key": site.api_key}, timeout=30)
    assert r.status_code == 200, f"{r.text}\n{site.log_tail()}"
    return r.json()


@pytest.fixture(scope="module")
def live_site(tmp_path_factory):
    site = start_site(tmp_path_factory.mktemp("browser-site"), setup=True)
    try:
        yield site
    finally:
        site.stop()


@pytest.fixture(scope="module")
def speech_wav():
    return write_speech_wav(ARTIFACTS / "user_speech.wav", USER_SENTENCE)


# The test's view of the page: every protocol event the public API reports, in order.
COLLECT_EVENTS = "() => { window.__events = []; OpenCVI.on('event', e => window.__events.push(e)); }"

FACE_FRAME_STATS = """() => {
  const v = document.getElementById('opencvi-face');
  if (!v || v.readyState < 2 || !v.videoWidth) return null;
  const c = document.createElement('canvas');
  c.width = 64; c.height = 64;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0, 64, 64);
  const d = g.getImageData(0, 0, 64, 64).data;
  let sum = 0, max = 0;
  for (let i = 0; i < d.length; i += 4) { const y = (d[i] + d[i + 1] + d[i + 2]) / 3; sum += y; if (y > max) max = y; }
  return {mean: sum / (d.length / 4), max: max, width: v.videoWidth, height: v.videoHeight,
          time: v.currentTime, paused: v.paused};
}"""


def wait_for_event(page, predicate_js: str, timeout_s: float) -> dict:
    """The first collected event matching ``predicate_js`` (a JS arrow function over one event)."""
    handle = page.wait_for_function(f"() => (window.__events || []).find({predicate_js}) || null",
                                    timeout=timeout_s * 1000, polling=100)
    return handle.json_value()


def save_events(page, name: str) -> list[dict]:
    events = page.evaluate("() => window.__events || []")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / name).write_text(json.dumps(events, indent=1))
    return events


def test_a_person_talks_with_the_face_in_chromium(live_site, speech_wav):
    from playwright.sync_api import sync_playwright

    conv = create_conversation(live_site)
    console: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p, speech_wav)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.goto(conv["conversation_url"])
            page.evaluate(COLLECT_EVENTS)
            # The join screen: preview from the fake camera, devices listed, Join enabled.
            join = page.locator("#opencvi-join-button")
            join.wait_for(state="visible")
            page.wait_for_function("() => !document.getElementById('opencvi-join-button').disabled", timeout=20_000)
            assert page.locator("#opencvi-problem").is_hidden(), page.locator("#opencvi-problem").inner_text()
            assert page.eval_on_selector("#opencvi-preview", "v => v.srcObject && v.srcObject.getVideoTracks().length") == 1
            assert page.locator("#opencvi-camera option").count() >= 1
            join.click()

            # The face joins (the first session of the process loads the models).
            wait_for_event(page, "e => e.event_type === 'system.replica_joined'", 120)
            assert page.locator("#opencvi-status").inner_text() == "Live"

            # The face video plays: frames arrive, time advances, and they are not black.
            page.wait_for_function(f"() => {{ const s = ({FACE_FRAME_STATS})(); return s && s.time > 0.5; }}",
                                   timeout=30_000, polling=200)
            first = page.evaluate(FACE_FRAME_STATS)
            time.sleep(1.0)
            later = page.evaluate(FACE_FRAME_STATS)
            assert not later["paused"] and later["time"] > first["time"] + 0.5, (first, later)
            assert later["mean"] > 30 and later["max"] > 120, f"the face video looks black: {later}"
            assert later["width"] >= 256 and later["height"] >= 256

            # The user's words come back as a caption, then the reply to them.
            words = " || ".join(f"(e.properties.speech || '').toLowerCase().includes('{w}')" for w in USER_WORDS)
            user = wait_for_event(
                page, f"e => e.event_type === 'conversation.utterance.streaming' && e.properties.role === 'user' && ({words})",
                120)
            user_caption = page.locator("#opencvi-caption-user .text").inner_text().lower()
            assert any(w in user_caption for w in USER_WORDS), user_caption
            reply = wait_for_event(
                page, "e => e.event_type === 'conversation.utterance.streaming' && e.properties.role === 'replica' "
                      f"&& e.inference_id === {json.dumps(user['inference_id'])} && (e.properties.speech || '').trim()",
                120)
            page.wait_for_function(
                "t => document.getElementById('opencvi-caption-replica').querySelector('.text').textContent.includes(t)",
                arg=reply["properties"]["speech"][:20], timeout=5_000)
            assert page.locator("#opencvi-caption-replica").is_visible()
            # The user's words stay up while the reply to them is spoken.
            assert page.locator("#opencvi-caption-user").is_visible()
            assert page.locator("#opencvi-self").is_visible()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "conversation_page.png"))

            # The toggles mute the microphone and turn the camera off (and back).
            page.locator("#opencvi-mic").click()
            assert page.evaluate("() => OpenCVI.localStream.getAudioTracks()[0].enabled") is False
            assert page.get_attribute("#opencvi-mic", "aria-pressed") == "false"
            page.locator("#opencvi-mic").click()
            assert page.evaluate("() => OpenCVI.localStream.getAudioTracks()[0].enabled") is True
            page.locator("#opencvi-cam").click()
            assert page.evaluate("() => OpenCVI.localStream.getVideoTracks()[0].enabled") is False
            assert page.locator("#opencvi-self").is_hidden()
            page.locator("#opencvi-cam").click()
            assert page.locator("#opencvi-self").is_visible()

            # Leave: the page says so and the server ends the conversation (participant_left_timeout 0).
            page.locator("#opencvi-leave").click()
            page.locator("#opencvi-over").wait_for(state="visible", timeout=5_000)
        finally:
            events = save_events(page, "browser_call_events.json")
            browser.close()
    kinds = [e["event_type"] for e in events]
    assert "conversation.replica.started_speaking" in kinds and "conversation.utterance" in kinds
    # Each event is handled once although it arrives on both the data channel and the WebSocket.
    seqs = [e["seq"] for e in events if e.get("seq") is not None]
    assert len(seqs) == len(set(seqs)), "an event was delivered twice"
    assert not [c for c in console if c.startswith("error")], console
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = httpx.get(f"{live_site.url}/v2/conversations/{conv['conversation_id']}",
                           headers={"x-api-key": live_site.api_key}, timeout=10).json()["status"]
        if status == "ended":
            break
        time.sleep(0.5)
    assert status == "ended"


def test_ended_and_private_pages_in_chromium(live_site):
    """What a person sees for an ended conversation and for a private one without its token."""
    from playwright.sync_api import sync_playwright

    ended = create_conversation(live_site, test_mode=True)  # created already ended
    private = create_conversation(live_site, require_auth=True)
    assert "meeting_token" in private
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            page.goto(ended["conversation_url"])
            assert "This conversation has ended" in page.inner_text("body")
            assert page.evaluate("() => typeof window.OpenCVI") == "undefined"
            response = page.goto(private["conversation_url"])
            assert response.status == 403 and "This conversation is private" in page.inner_text("body")
            page.goto(f"{private['conversation_url']}?t={private['meeting_token']}")
            page.wait_for_function("() => window.OpenCVI && OpenCVI.config.token.length > 0")
        finally:
            browser.close()


def test_a_full_conversation_says_so(live_site):
    """max_participants=2 (the face counts): a second tab is told the conversation is full."""
    from playwright.sync_api import sync_playwright

    conv = create_conversation(live_site, max_participants=2)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            context = browser.new_context()
            first, second = context.new_page(), context.new_page()
            for page in (first, second):
                page.goto(conv["conversation_url"])
                page.wait_for_function("() => !document.getElementById('opencvi-join-button').disabled", timeout=20_000)
            first.locator("#opencvi-join-button").click()
            first.wait_for_function("() => ['connected', 'live'].includes(OpenCVI.state)", timeout=120_000)
            second.locator("#opencvi-join-button").click()
            second.locator("#opencvi-over").wait_for(state="visible", timeout=30_000)
            assert second.locator("#opencvi-over-title").inner_text() == "Could not join"
            assert "full" in second.locator("#opencvi-over-text").inner_text()
            # The first tab is undisturbed.
            assert first.evaluate("() => OpenCVI.state") in ("connected", "live")
            first.locator("#opencvi-leave").click()
        finally:
            browser.close()


def test_permission_refused_is_explained(live_site):
    """Without camera/microphone permission the join screen says what to do, in plain words."""
    from playwright.sync_api import sync_playwright

    conv = create_conversation(live_site)
    with sync_playwright() as p:
        # No --use-fake-ui-for-media-stream: headless Chromium denies the permission prompt.
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[a for a in chromium_args()
                                                                    if a != "--use-fake-ui-for-media-stream"])
        try:
            page = browser.new_page()
            page.goto(conv["conversation_url"])
            problem = page.locator("#opencvi-problem")
            problem.wait_for(state="visible", timeout=20_000)
            assert "blocked" in problem.inner_text() and "allow" in problem.inner_text()
            assert page.locator("#opencvi-join-button").is_disabled()
            assert page.locator("#opencvi-retry").is_visible()
        finally:
            browser.close()


def copy_docs_screenshot() -> None:  # pragma: no cover - a maintenance helper, not a test
    """Make docs/conversation_page.png (< 150 KB) from the artifact: `python -c 'from
    tests.conversations.test_browser_call import copy_docs_screenshot as f; f()'`."""
    from PIL import Image

    src = ARTIFACTS / "conversation_page.png"
    dst = ROOT / "docs" / "conversation_page.png"
    image = Image.open(src).convert("RGB")
    image = image.resize((960, int(960 * image.height / image.width)), Image.LANCZOS)
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG).save(dst, optimize=True)
    if dst.stat().st_size > 150_000:
        raise SystemExit(f"{dst} is {dst.stat().st_size} bytes: make it smaller")


def test_a_live_call_whose_connection_drops_reconnects_in_chromium(live_site):
    """The page's WebSocket drops mid-call (the peer connection goes with it): the page says
    "Reconnecting…", joins again within participant_left_timeout, and the same conversation goes
    on with the face video flowing; never "Could not join"."""
    from playwright.sync_api import sync_playwright

    conv = create_conversation(live_site, properties={"participant_left_timeout": 30,
                                                      "participant_absent_timeout": 600})
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(conv["conversation_url"])
            page.evaluate(COLLECT_EVENTS)
            page.evaluate("() => { window.__states = []; OpenCVI.on('state', s => window.__states.push(s.state)); }")
            page.wait_for_function("() => !document.getElementById('opencvi-join-button').disabled", timeout=20_000)
            page.locator("#opencvi-join-button").click()
            wait_for_event(page, "e => e.event_type === 'system.replica_joined'", 120)
            page.wait_for_function(f"() => {{ const s = ({FACE_FRAME_STATS})(); return s && s.time > 0.5; }}",
                                   timeout=30_000, polling=200)
            # the network drops the socket (and with it the server's side of the media)
            page.evaluate("() => OpenCVI.client.ws.close()")
            page.wait_for_function("() => window.__states.includes('reconnecting')", timeout=10_000)
            page.wait_for_function("() => window.__states.slice(-1)[0] === 'live'", timeout=60_000, polling=200)
            assert page.locator("#opencvi-status").inner_text() == "Live"
            assert page.locator("#opencvi-over").is_hidden()
            # the face video flows again on the new connection
            before = page.evaluate(FACE_FRAME_STATS)
            page.wait_for_function(f"t => {{ const s = ({FACE_FRAME_STATS})(); return s && s.time > t + 1; }}",
                                   arg=before["time"] if before else 0, timeout=30_000, polling=200)
            states = page.evaluate("() => window.__states")
        finally:
            browser.close()
    assert "error" not in states and "disconnected" not in states, states
    status = httpx.get(f"{live_site.url}/v2/conversations/{conv['conversation_id']}",
                       headers={"x-api-key": live_site.api_key}, timeout=10).json()["status"]
    assert status == "active"  # the same conversation, still live
    httpx.post(f"{live_site.url}/v2/conversations/{conv['conversation_id']}/end",
               headers={"x-api-key": live_site.api_key}, timeout=30)
