"""Embedding: a page on another origin puts the conversation in an iframe (opencvi-embed.js) and
drives it through the JS API over postMessage; an origin that is not allowed is refused by
``frame-ancestors``. Real site, real engines, headless Debian Chromium."""
from __future__ import annotations

import functools
import http.server
import threading
import wave
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conversations.test_browser_call import ARTIFACTS, create_conversation, launch_chromium
from tests.live import free_port, start_site

pytestmark = [pytest.mark.slow, pytest.mark.browser]

EMBED_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Example shop</title><link rel="icon" href="data:,">
<script src="{site}/static/js/opencvi-embed.js"></script></head>
<body style="margin:0;font-family:sans-serif;background:#f4f4f4">
<h1 style="font-size:16px;margin:8px">Example shop: talk to our assistant</h1>
<div id="cvi" style="width:800px;height:450px"></div>
<script>
  window.events = []; window.states = []; window.unavailable = null;
  const url = new URLSearchParams(location.search).get('url');
  window.call = OpenCVIEmbed.mount(document.getElementById('cvi'), url);
  call.on('event', e => events.push(e));
  call.on('state', s => states.push(s.state));
  call.on('unavailable', u => {{ window.unavailable = u; }});
</script>
</body></html>
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


@pytest.fixture(scope="module")
def embed_site(tmp_path_factory):
    site = start_site(tmp_path_factory.mktemp("embed-site"), setup=True)
    try:
        yield site
    finally:
        site.stop()


@pytest.fixture(scope="module")
def embedding_pages(tmp_path_factory, embed_site):
    """Two plain static sites on other origins (http://localhost:<port>): one allowed, one not."""
    root = tmp_path_factory.mktemp("embedder")
    (root / "embed.html").write_text(EMBED_PAGE.format(site=embed_site.url))
    servers = []
    for _ in range(2):
        port = free_port()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                                 functools.partial(_QuietHandler, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    allowed, other = (f"http://localhost:{s.server_address[1]}" for s in servers)
    embed_site.manage("shell", "-c", (
        "from cvi_site.models import Account; from cvi_site.services import account_update_embed_origins; "
        f"account_update_embed_origins(account=Account.objects.get(username='live'), origins=['{allowed}'])"))
    try:
        yield {"allowed": allowed, "other": other}
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def silent_wav(tmp_path_factory) -> Path:
    # Chromium's default fake microphone beeps, which the VAD would take for speech.
    path = tmp_path_factory.mktemp("audio") / "silence.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(b"\0\0" * 16_000)
    return path


def wait_event(page, predicate_js: str, timeout_s: float) -> dict:
    handle = page.wait_for_function(f"() => window.events.find({predicate_js}) || null",
                                    timeout=timeout_s * 1000, polling=100)
    return handle.json_value()


def test_embedding_page_drives_the_conversation_over_postmessage(embed_site, embedding_pages, silent_wav):
    from playwright.sync_api import sync_playwright

    conv = create_conversation(embed_site)
    url = conv["conversation_url"]
    with sync_playwright() as p:
        browser = launch_chromium(p, silent_wav)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 560})
            page.goto(f"{embedding_pages['allowed']}/embed.html?url={quote(url, safe='')}")
            # The frame loaded from the conversation's origin and said it is ready.
            page.wait_for_function("() => call.state !== 'loading'", timeout=20_000)
            assert page.evaluate("() => call.origin") == embed_site.url
            assert page.get_attribute("iframe", "allow").startswith("camera; microphone")
            # Cross-origin: the embedding page cannot reach into the frame, only talk to it.
            assert page.evaluate("() => document.querySelector('iframe').contentDocument") is None

            # join() from the embedding page: the frame opens the camera/mic and connects.
            page.evaluate("() => call.join()")
            wait_event(page, "e => e.event_type === 'system.replica_joined'", 120)
            assert "live" in page.evaluate("() => window.states")
            # Let the greeting finish, then speak through the API as if the user had said it.
            wait_event(page, "e => e.event_type === 'conversation.replica.stopped_speaking'", 60)
            page.evaluate("() => call.respond('hello')")
            user = wait_event(page, "e => e.event_type === 'conversation.utterance' && e.properties.role === 'user'", 30)
            assert user["properties"]["speech"] == "hello"
            reply = wait_event(page, "e => e.event_type === 'conversation.utterance.streaming' && "
                                     f"e.properties.role === 'replica' && e.inference_id === '{user['inference_id']}'", 90)
            assert reply["properties"]["speech"].strip()
            assert reply["conversation_id"] == conv["conversation_id"]

            # A malformed command comes back as a failed result, nothing else breaks.
            error = page.evaluate("() => call.command('nonsense').then(() => null, e => e.message)")
            assert "unknown command" in error
            page.evaluate("() => call.interrupt()")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "embedded_page.png"))
            page.evaluate("() => call.leave()")
            page.wait_for_function("() => window.states.includes('left')", timeout=10_000)
            seqs = [e["seq"] for e in page.evaluate("() => window.events") if e.get("seq") is not None]
            assert len(seqs) == len(set(seqs)), "an event was posted twice"
        finally:
            browser.close()


def test_an_origin_that_is_not_allowed_cannot_embed(embed_site, embedding_pages, silent_wav):
    from playwright.sync_api import sync_playwright

    conv = create_conversation(embed_site)
    url = conv["conversation_url"]
    console: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p, silent_wav)
        try:
            page = browser.new_page()
            page.on("console", lambda m: console.append(m.text))
            page.goto(f"{embedding_pages['other']}/embed.html?url={quote(url, safe='')}")
            # The helper notices that the frame never started ...
            page.wait_for_function("() => window.unavailable !== null", timeout=20_000)
            assert page.evaluate("() => call.state") == "loading"
            # ... because Chromium refused to render it (frame-ancestors), and said why.
            frames = [f for f in page.frames if f != page.main_frame]
            assert frames and all(not f.url.startswith(embed_site.url) for f in frames), [f.url for f in frames]
            assert any("frame-ancestors" in line for line in console), console
            # The same page on the allowed origin does get the frame (the refusal is the origin's).
            page.goto(f"{embedding_pages['allowed']}/embed.html?url={quote(url, safe='')}")
            page.wait_for_function("() => call.state !== 'loading'", timeout=20_000)
        finally:
            browser.close()


def test_origin_matching_of_the_client(embed_site):
    """The client obeys postMessage commands only from allowed origins (wildcards included)."""
    from playwright.sync_api import sync_playwright

    conv = create_conversation(embed_site)
    cases = [
        ("https://a.example.com", ["https://*.example.com"], True),
        ("https://example.com", ["https://*.example.com"], False),
        ("https://evil-example.com", ["https://*.example.com"], False),
        ("http://a.example.com", ["https://*.example.com"], False),
        ("https://a.example.com:8443", ["https://*.example.com"], False),
        ("https://shop.example", ["https://shop.example"], True),
        ("null", ["https://shop.example"], False),
    ]
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            page.goto(conv["conversation_url"])
            for origin, allowed, expected in cases:
                got = page.evaluate("([o, a]) => OpenCVI.originAllowed(o, a)", [origin, allowed])
                assert got is expected, (origin, allowed)
            # Outside an iframe there is no bridge: nothing is posted anywhere.
            assert page.evaluate("() => window.parent === window")
        finally:
            browser.close()
