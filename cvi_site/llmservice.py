"""The box's LLM service: one llama.cpp server (``llama-server``) shared by every call and every
web process, with continuous batching and one slot per live call that keeps its prompt prefix
cached. ``make run`` (``manage.py serve``), the live site of the end-to-end tests and the
benchmarks all start it through ``start_llm_service``, so they run what a user gets.

In production it is its own process or box (or vLLM on a GPU) and ``LLM_URL`` points at it;
then nothing is started here.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

logger = logging.getLogger(__name__)

#: the model name the embedded LLM engines send; the server serves one model, so any name works
READY_TIMEOUT_S = 120


def llm_server_binary() -> str | None:
    """``llama-server`` from this virtual environment (``make setup`` puts it there), or PATH."""
    beside = Path(sys.executable).parent / "llama-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("llama-server")


def service_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1"


def llm_service_command(*, binary: str, gguf: str, port: int, slots: int, n_ctx: int, threads: int,
                        threads_batch: int) -> list[str]:
    """The server's command line: ``slots`` parallel sequences (one per live call this box holds),
    each with ``n_ctx`` tokens of context, batched together."""
    return [
        binary, "--model", gguf, "--host", "127.0.0.1", "--port", str(port),
        "--parallel", str(slots), "--ctx-size", str(n_ctx * slots), "--no-kv-unified",
        "--cont-batching", "--cache-prompt", "--jinja",
        "--threads", str(threads), "--threads-batch", str(threads_batch),
        # idle threads sleep instead of spinning: the cores are shared with every call's media
        "--poll", "0",
        "--threads-http", str(slots + 2), "--no-webui", "--metrics",
        # a prompt is kept per slot; a call that lands on another slot restores its prefix from RAM
        "--cache-ram", "512",
    ]


def start_llm_service(*, port: int, log_path: Path | None = None,
                      models_dir: str | os.PathLike[str] | None = None, slots: int | None = None,
                      n_ctx: int | None = None, threads: int | None = None, threads_batch: int | None = None,
                      ) -> subprocess.Popen:
    """Start the server on the sha256-checked embedded model; returns once it answers /health.
    Sizes default to the settings (LLM_SLOTS, LLM_CONTEXT_TOKENS) and the engines' thread plan
    (``registry.thread_plan()``: generation threads from what the calls leave, prompts on every core)."""
    from django.conf import settings

    from conversations.realtime.engines.models import gguf_path

    slots = slots or settings.LLM_SLOTS
    n_ctx = n_ctx or settings.LLM_CONTEXT_TOKENS
    from conversations.realtime.engines.registry import service_model, thread_plan

    threads = threads or thread_plan().llm_generation
    threads_batch = threads_batch or thread_plan().llm_prompt

    binary = llm_server_binary()
    if binary is None:
        raise RuntimeError("llama-server is not installed (make setup builds it into .venv/bin)")

    gguf = str(gguf_path(service_model(), models_dir))
    cmd = llm_service_command(binary=binary, gguf=gguf, port=port, slots=slots, n_ctx=n_ctx,
                              threads=threads, threads_batch=threads_batch)
    out = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(service_url(port), proc=proc)
    except Exception:
        proc.terminate()
        raise
    return proc


def wait_for_http(url: str, *, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    """Wait until ``url`` answers 200 (while ``proc``, the process serving it, is alive)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{Path(str(proc.args[0])).name} exited with status {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def wait_ready(url: str, *, proc: subprocess.Popen | None = None, timeout: float = READY_TIMEOUT_S) -> None:
    """Wait until the server has loaded its model (``/health`` says ok)."""
    wait_for_http(url.rstrip("/").removesuffix("/v1") + "/health", proc=proc, timeout=timeout)


def check_health(url: str) -> tuple[bool, str]:
    """For /healthz: is the box's LLM service up, and how many slots does it have?"""
    base = url.rstrip("/").removesuffix("/v1")
    r = httpx.get(base + "/health", timeout=2)
    if r.status_code != 200:
        return False, f"{base}/health answered {r.status_code}"
    try:
        slots = httpx.get(base + "/slots", timeout=2).json()
        return True, f"{base}: {len(slots)} slot(s), {sum(1 for s in slots if s.get('is_processing'))} busy"
    except (httpx.HTTPError, ValueError):
        return True, base


@contextlib.contextmanager
def llm_service_as_served() -> Iterator[str]:
    """For a benchmark run in this process: the LLM service a live call of this box uses,
    ``LLM_URL`` when it is set, otherwise one started here as ``manage.py serve`` starts it
    (same binary, model and sizes) and stopped at the end. The engine registry is pointed at
    it for the duration. Yields its URL."""
    from django.conf import settings

    from conversations.realtime.engines import registry

    if settings.LLM_URL:
        yield settings.LLM_URL
        return
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = start_llm_service(port=port, log_path=settings.DATA_DIR / "llm-service-bench.log",
                             models_dir=settings.MODELS_DIR)
    url = service_url(port)
    registry.configure(llm_url=url)
    try:
        yield url
    finally:
        registry.configure(llm_url="")
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
