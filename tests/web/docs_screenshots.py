"""Regenerate the README screenshots from a real run (not a test; run it by hand):

    .venv/bin/python -m tests.web.docs_screenshots [--out docs]

It starts the real site (Daphne + a Celery worker, fresh data dir, shared models) and a local
OpenAI-compatible LLM server, then in headless Chromium: builds a PAL whose LLM is that
endpoint and tests the connection (docs/pal_editor.png); trains a face from the stock
portrait and shows the gallery (docs/face_gallery.png); and holds a real call with a tutor
PAL, with eSpeak NG questions as the fake microphone, so the transcript and the latency chart
show what the pipeline really did (docs/conversation_transcript.png). Each PNG is reduced
to a 256-colour palette to stay small.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import wave
from pathlib import Path

USERNAME, PASSWORD = "ada", "docs-screenshots-password-1"
QUESTIONS = ("Hello, can you help me with some geography?", "What is the capital city of France?",
             "And what is the capital city of Italy?")
MIC_RATE = 16_000


def small_png(src: Path, dest: Path, *, max_bytes: int = 150_000, width: int | None = None) -> int:
    """Write ``src`` as a palette PNG (downscaled until it is under ``max_bytes``)."""
    from PIL import Image

    image = Image.open(src).convert("RGB")
    if width and image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    while True:
        image.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
            dest, optimize=True)
        size = dest.stat().st_size
        if size <= max_bytes or image.width < 600:
            return size
        image = image.resize((int(image.width * 0.85), int(image.height * 0.85)), Image.LANCZOS)


def questions_wav(path: Path, *, gap_s: float = 16.0) -> Path:
    """The person's side of the call: the questions, each followed by time for the reply."""
    import numpy as np

    from conversations.realtime.audio import resample
    from conversations.realtime.engines.base import VoiceOptions
    from conversations.realtime.engines.registry import get_tts

    parts = [np.zeros(int(5.0 * MIC_RATE), np.float32)]
    for text in QUESTIONS:
        chunks = get_tts().synthesize_blocking(text, voice=VoiceOptions(voice="en-us", speed=0.95))
        pcm = np.concatenate([c.pcm for c in chunks]).astype(np.float32) / 32768
        parts += [resample(pcm, chunks[0].sample_rate, MIC_RATE), np.zeros(int(gap_s * MIC_RATE), np.float32)]
    parts.append(np.zeros(int(60 * MIC_RATE), np.float32))  # Chromium loops the file: no second round
    audio = np.concatenate(parts)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(MIC_RATE)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs", help="folder for the PNGs (default: docs)")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cvi_site.settings")
    import django

    django.setup()
    from django.conf import settings
    from playwright.sync_api import expect, sync_playwright

    from tests.live import ROOT, start_site
    from tests.web.support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, shot, sign_in, start_llm_server, \
        training_installed

    out = (ROOT / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="opencvi-docs-"))
    (work / "models").symlink_to(Path(settings.MODELS_DIR).resolve(), target_is_directory=True)
    wav = questions_wav(work / "questions.wav")
    training = training_installed()
    llm = start_llm_server(settings.MODELS_DIR)
    site = start_site(work, worker=True, setup=training)
    written: dict[str, int] = {}
    try:
        site.manage("shell", "-c", f"from cvi_site.services import account_create; "
                                   f"account_create(username={USERNAME!r}, password={PASSWORD!r})")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM,
                                         args=CHROMIUM_ARGS + [f"--use-file-for-fake-audio-capture={wav}"])
            page = browser.new_page(viewport={"width": 1280, "height": 900}, base_url=site.url)
            page.set_default_timeout(30_000)
            sign_in(page, USERNAME, PASSWORD)

            # -------------------------------------------------- the PAL editor, LLM at an endpoint
            page.goto("/pals/new/")
            page.get_by_label("Name", exact=True).fill("Support agent")
            page.get_by_label("System prompt").fill("You are a friendly support agent for a bicycle shop. "
                                                    "Answer in one or two short sentences.")
            page.get_by_label("An OpenAI-compatible endpoint").check()
            page.get_by_label("Base URL", exact=True).fill(llm.url)
            page.get_by_label("Model name").fill("local-qwen")
            page.locator("#id_llm_tools").fill(
                '[{"type": "function", "function": {"name": "check_stock", "description": "Is a part in stock?",'
                ' "parameters": {"type": "object", "properties": {"part": {"type": "string"}}}}}]')
            page.get_by_role("button", name="Test connection").click()
            expect(page.locator("#llm-test-output")).to_have_attribute("data-done", "1", timeout=180_000)
            page.locator("#llm").evaluate("el => { el.scrollIntoView({block: 'start'}); window.scrollBy(0, -16); }")
            page.wait_for_timeout(300)
            src = shot(page, "docs_pal_editor")
            written["pal_editor.png"] = small_png(src, out / "pal_editor.png")
            page.get_by_role("button", name="Create PAL").first.click()
            llm.stop()  # the call below needs both cores

            # -------------------------------------------------- a tutor that runs on the embedded model
            page.goto("/pals/new/")
            page.get_by_label("Name", exact=True).fill("Ada the geography tutor")
            page.get_by_label("System prompt").fill(
                "You are Ada, a warm geography tutor on a video call. Answer in one short sentence.")
            page.get_by_label("Turn-taking patience").select_option("medium")
            page.locator("#id_pc_perception_model").select_option("off")  # leave the CPU to the call
            page.get_by_role("button", name="Create PAL").first.click()
            expect(page.locator(".flash-success")).to_be_visible()
            tutor_url = page.url

            # -------------------------------------------------- faces
            face_id = "rstock000001"
            if training:
                from PIL import Image
                from skimage import data as skdata

                portrait = work / "portrait.png"
                Image.fromarray(skdata.astronaut()).save(portrait)
                page.goto("/faces/train/")
                page.get_by_label("Name", exact=True).fill("Eileen, my copy")
                page.get_by_label("Training video or photo").set_input_files(str(portrait))
                page.get_by_label("I am the person in this recording").check()
                page.get_by_role("button", name="Upload and train").click()
                page.wait_for_url("**/faces/r*/")
                face_id = page.url.rstrip("/").rsplit("/", 1)[1]
                # a second upload, to show a face in training next to the ready ones
                page.locator("#face-live[data-status='ready']").wait_for(timeout=900_000)
                page.goto("/faces/train/")
                page.get_by_label("Name", exact=True).fill("Front desk (training)")
                page.get_by_label("Training video or photo").set_input_files(str(portrait))
                page.get_by_label("I am the person in this recording").check()
                page.get_by_role("button", name="Upload and train").click()
                page.wait_for_url("**/faces/r*/")
                page.wait_for_function("() => +document.querySelector('[data-face-progress]')"
                                       ".getAttribute('aria-valuenow') >= 20", timeout=300_000)
                second = page.url
                page.goto("/faces/")
                page.wait_for_function("() => [...document.querySelectorAll('img[data-face-thumb]')]"
                                       ".every(i => i.complete && i.naturalWidth > 0)")
                src = shot(page, "docs_face_gallery", full_page=True)
                written["face_gallery.png"] = small_png(src, out / "face_gallery.png")
                # the call below needs the CPU: let the second training finish first
                page.goto(second)
                page.locator("#face-live[data-status='ready']").wait_for(timeout=900_000)
            else:
                print("faces.training is not installed: docs/face_gallery.png not regenerated", file=sys.stderr)
                site.manage("shell", "-c", "from faces.models import Face; "
                                           "Face.objects.filter(pk='rstock000001').update(status='ready')")

            # -------------------------------------------------- a real call, then its transcript
            page.goto(tutor_url)
            page.get_by_label("Default face").select_option(face_id)
            page.get_by_role("button", name="Save changes").first.click()
            page.get_by_role("button", name="▶ Talk now").click()
            page.wait_for_url("**/c/c*/")
            conversation_id = page.url.rstrip("/").rsplit("/", 1)[1]
            page.wait_for_function("() => { const b = document.getElementById('opencvi-join-button');"
                                   " return b && !b.disabled; }", timeout=30_000)
            page.evaluate("() => { window.__events = []; OpenCVI.on('event', e => window.__events.push(e)); }")
            page.locator("#opencvi-join-button").click()
            # Count the replies from the page's own events (cheap: the call needs the CPU).
            page.wait_for_function(
                f"() => (window.__events || []).filter(e => e.event_type === 'conversation.utterance'"
                f" && e.properties.role !== 'user').length >= {len(QUESTIONS)}", timeout=240_000, polling=500)
            page.wait_for_timeout(6000)  # let the last reply finish
            shot(page, "docs_call")
            page.locator("#opencvi-leave").click()
            page.wait_for_timeout(2000)
            page.goto(f"/conversations/{conversation_id}/")
            page.set_viewport_size({"width": 1280, "height": 1000})
            src = shot(page, "docs_conversation_transcript", full_page=True)
            written["conversation_transcript.png"] = small_png(src, out / "conversation_transcript.png", width=1100)
            browser.close()
    finally:
        site.stop()
        llm.stop()
        for name in ("daphne.log", "worker.log"):
            if (work / name).exists():
                (ARTIFACTS / f"docs_{name}").write_text((work / name).read_text())
    for name, size in written.items():
        print(f"{out / name}: {size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
