"""Shared by the browser test and the README screenshot script: Debian's Chromium, a local
OpenAI-compatible LLM server, and small helpers."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.live import ROOT, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 # the conversation page asks for the microphone and camera
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
ARTIFACTS = ROOT / "artifacts" / "web"


def require_chromium() -> str:
    """Debian's Chromium, or the test fails under CI (skips elsewhere) saying it is missing."""
    if not os.path.exists(CHROMIUM):
        from tests.conftest import require_service

        require_service("Chromium", f"{CHROMIUM} is missing (make test installs Debian's chromium)")
    return CHROMIUM


def training_installed() -> bool:
    """Whether the face training code (another part of the project) is in this checkout."""
    try:
        training = importlib.import_module("faces.training")
    except ImportError:
        return False
    return all(hasattr(training, name) for name in ("train_from_image", "train_from_video", "build_stock_face"))


@dataclass
class LlmServer:
    url: str  # the base URL, ending in /v1
    proc: subprocess.Popen

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_llm_server(models_dir: Path, *, alias: str = "local-qwen", threads: int = 1) -> LlmServer:
    """llama.cpp's OpenAI-compatible server (llama-cpp-python[server]) on the embedded Qwen GGUF."""
    from conversations.realtime.engines.models import gguf_path

    gguf = gguf_path("qwen2.5-coder-0.5b", models_dir)
    port = free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / "llm-server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", alias,
                             "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(threads),
                             "--n_ctx", "1024", "--verbose", "False"], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    server = LlmServer(url=f"http://127.0.0.1:{port}/v1", proc=proc)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the LLM server exited: {(ARTIFACTS / 'llm-server.log').read_text()[-2000:]}")
        try:
            if httpx.get(server.url + "/models", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError("the LLM server did not start in 120 s")


def shot(page, name: str, *, full_page: bool = False, clip: dict | None = None) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, clip=clip)
    return path


def sign_in(page, username: str, password: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
