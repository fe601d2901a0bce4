"""The OpenAI-compatible engine against a real local server: llama-cpp-python's own
``llama_cpp.server`` on the same GGUF, started once for this module."""
from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from engine_helpers import ARTIFACTS, run

from conversations.realtime.engines import registry
from conversations.realtime.engines.base import EngineError, LLMDelta
from conversations.realtime.engines.openai_llm import OpenAILLM

pytestmark = pytest.mark.slow

API_KEY = "sk-test-not-a-real-key-4242"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_paths) -> str:
    port = free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / "llama_server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model_paths["qwen2.5-coder-0.5b"]),
             "--model_alias", "qwen-test", "--host", "127.0.0.1", "--port", str(port),
             "--n_threads", "1", "--n_ctx", "2048", "--api_key", API_KEY],
            stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                tail = Path(log_path).read_text(errors="replace")[-2000:]
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{tail}")
            try:
                r = httpx.get(f"{base_url}/models", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=2)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not answer /v1/models within 120 s")
            time.sleep(0.3)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def client(base_url: str, **kw) -> OpenAILLM:
    return OpenAILLM(base_url=base_url, model="qwen-test", api_key=API_KEY, **kw)


async def collect(llm: OpenAILLM, messages, **kw) -> list[LLMDelta]:
    try:
        return [d async for d in llm.stream(messages, **kw)]
    finally:
        await llm.aclose()


def test_streams_text(server):
    deltas = run(collect(client(server), [{"role": "system", "content": "Answer in one short sentence."},
                                          {"role": "user", "content": "What is the capital of France?"}],
                         max_tokens=32, temperature=0.0))
    assert len(deltas) > 2  # streamed in pieces, not one blob
    assert "Paris" in "".join(d.text for d in deltas)


def test_registry_builds_a_session_client_with_headers_and_extras(server):
    llm = registry.get_llm("openai", base_url=server + "/chat/completions", model="qwen-test", api_key=API_KEY,
                           headers={"X-Trace": "abc"}, extra_body={"seed": 7}, default_query={"probe": "1"})
    assert isinstance(llm, OpenAILLM) and llm.base_url == server
    assert llm is not registry.get_llm("openai", base_url=server, model="qwen-test")  # per session
    deltas = run(collect(llm, [{"role": "user", "content": "Say OK."}], max_tokens=8, temperature=0.0))
    assert "".join(d.text for d in deltas).strip()


def test_tools_become_tool_calls(server):
    deltas = run(collect(client(server), [{"role": "user", "content": "What's the weather like in Paris right now?"}],
                         tools=[WEATHER_TOOL], max_tokens=64, temperature=0.0))
    calls = [d.tool_call for d in deltas if d.tool_call]
    assert [c.name for c in calls] == ["get_weather"]
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    assert "{" not in "".join(d.text for d in deltas)


def test_closing_the_stream_midway_and_the_server_still_answers(server):
    async def scenario():
        llm = client(server)
        agen = llm.stream([{"role": "user", "content": "Write a long story about a dragon."}], max_tokens=300)
        got = [await agen.__anext__() for _ in range(3)]
        t0 = time.perf_counter()
        await agen.aclose()  # closes the HTTP stream
        closed_in = time.perf_counter() - t0
        after = [d async for d in llm.stream([{"role": "user", "content": "What is the capital of France?"}],
                                             max_tokens=24, temperature=0.0)]
        await llm.aclose()
        return got, closed_in, after

    got, closed_in, after = run(scenario())
    assert len(got) == 3 and closed_in < 5
    assert "Paris" in "".join(d.text for d in after)


def test_cancelling_the_consuming_task(server):
    async def scenario():
        llm = client(server)
        first = asyncio.Event()

        async def consume():
            async for _ in llm.stream([{"role": "user", "content": "Count from 1 to 200."}], max_tokens=300):
                first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await llm.aclose()

    run(scenario())


def test_a_dead_endpoint_is_a_clear_engine_error():
    dead = OpenAILLM(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", api_key=API_KEY, connect_timeout=2)
    with pytest.raises(EngineError) as err:
        run(collect(dead, [{"role": "user", "content": "hi"}]))
    message = str(err.value)
    assert "cannot reach the LLM endpoint" in message and "127.0.0.1" in message
    assert API_KEY not in message and err.value.code == "llm_unreachable"


def test_http_errors_are_clear_and_never_leak_the_key(server):
    with pytest.raises(EngineError) as err:
        run(collect(OpenAILLM(base_url=server, model="qwen-test", api_key="sk-wrong-key-123456"),
                    [{"role": "user", "content": "hi"}]))
    message = str(err.value)
    assert "HTTP 401" in message and "sk-wrong-key-123456" not in message
    with pytest.raises(EngineError, match="HTTP 404"):
        run(collect(client(server.replace("/v1", "/nope")), [{"role": "user", "content": "hi"}]))
