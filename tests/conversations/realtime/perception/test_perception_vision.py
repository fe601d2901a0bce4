"""The vision-model path (``perception_model: vision-llm``).

No small multimodal model ships offline on these machines (MODELS.md), so llama.cpp's server
cannot be run with one here. Instead a minimal OpenAI-compatible HTTP server written for the
tests (vision_server.py) records every request and streams a fixed SSE answer; the test checks what a real
server would receive (the image as a base64 JPEG data URL in the chat content, the queries,
the tool conditions, the key) and what the monitor makes of the answer (visual context,
awareness answers, one tool call per onset, the end-of-call analysis).
"""
from __future__ import annotations

import asyncio
import base64
import json
import time

import cv2
import numpy as np
import pytest

from bench import perception_scene as sv
from conversations.realtime.perception.engine import get_engine
from conversations.realtime.events import PERCEPTION_AWARENESS, PERCEPTION_TOOL_CALL
from conversations.realtime.perception.monitor import PerceptionMonitor
from conversations.realtime.perception.options import SamplingPolicy
from tests.conversations.realtime.perception.vision_server import (
    API_KEY,
    VisionServer,
    images_of,
    text_of,
    vision_server,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def server():
    with vision_server() as srv:
        yield srv


LAYER = {
    "perception_model": "vision-llm", "model": "test-vision", "api_key": API_KEY,
    "visual_awareness_queries": ["Is the user holding a pen?", "Is the user wearing glasses?"],
    "perception_analysis_queries": ["What objects did the user show?"],
    "visual_tool_prompt": "Call show_object only for objects held up on purpose.",
    "visual_tools": [{"type": "function", "function": {
        "name": "show_object", "description": "The user holds an object up to the camera.",
        "parameters": {"type": "object", "properties": {"object": {"type": "string"}}, "required": ["object"]}}}],
}


async def _feed_until(monitor: PerceptionMonitor, cond, timeout: float = 20.0, fps: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    i = 0
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        monitor.offer_frame(sv.frame_at(i / fps), 1000.0 * time.monotonic())
        i += 1
        await asyncio.sleep(1 / fps)


def test_vision_model_request_answers_tool_and_analysis(server: VisionServer) -> None:
    events: list[tuple[str, dict]] = []
    layer = {**LAYER, "base_url": server.base_url}
    monitor = PerceptionMonitor(layer, emit=lambda e: events.append((e.name, e.properties())), engine=get_engine(),
                                sampling=SamplingPolicy(idle_fps=4.0, vision_interval_s=0.2))

    async def main() -> tuple[str, str]:
        try:
            await _feed_until(monitor, lambda: len(server.requests) >= 4)
            await monitor.drain()
            context = monitor.visual_context()
            analysis = await asyncio.wait_for(monitor.final_analysis(), 20)
            return context, analysis
        finally:
            await monitor.close()

    context, analysis = asyncio.run(asyncio.wait_for(main(), 60))

    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == f"Bearer {API_KEY}"
    body = first["body"]
    assert body["model"] == "test-vision" and body["stream"] is True and body["temperature"] == 0.0
    assert body["messages"][0]["role"] == "system"
    text = text_of(body)
    assert "Q1: Is the user holding a pen?" in text and "Q2: Is the user wearing glasses?" in text
    assert "C1: show_object: The user holds an object up to the camera." in text
    assert "Call show_object only for objects held up on purpose." in text
    images = images_of(body)
    assert len(images) == 1 and images[0].shape == (384, 512, 3), "640×480 sent at 512 px wide"
    assert images[0].mean() > 40, "a real picture, not an empty one"

    assert "seen: a smiling woman in an orange flight suit" in context
    assert '"Is the user holding a pen?" yes, a blue pen' in context
    assert '"Is the user wearing glasses?" no glasses' in context
    assert context.startswith("[visual] user present, looking at the screen"), "embedded signals still there"

    calls = [p for kind, p in events if kind == PERCEPTION_TOOL_CALL]
    assert len(calls) == 1, f"{len(server.requests)} 'yes' answers must make one call, got {len(calls)}"
    assert calls[0]["name"] == "show_object" and json.loads(calls[0]["arguments"]) == {"object": "pen"}
    frame = cv2.imdecode(np.frombuffer(base64.b64decode(calls[0]["frames"][0]), np.uint8), cv2.IMREAD_COLOR)
    assert frame.shape == (288, 384, 3)

    awareness = [p for kind, p in events if kind == PERCEPTION_AWARENESS]
    assert awareness and awareness[0]["answers"][0] == {"query": "Is the user holding a pen?",
                                                        "answer": "yes, a blue pen"}
    assert awareness[0]["unanswerable"] == []

    last = server.requests[-1]["body"]
    assert "moments from the user's camera" in text_of(last) and "Q1: What objects did the user show?" in text_of(last)
    assert 1 <= len(images_of(last)) <= 4
    assert "Q: What objects did the user show?\nA: She showed a blue pen." in analysis
    assert analysis.startswith("Observed ")


def test_vision_endpoint_failure_is_reported_once_and_embedded_perception_goes_on(server: VisionServer) -> None:
    server.status = 503
    events: list[tuple[str, dict]] = []
    monitor = PerceptionMonitor({**LAYER, "base_url": server.base_url},
                                emit=lambda e: events.append((e.name, e.properties())), engine=get_engine(),
                                sampling=SamplingPolicy(idle_fps=4.0, vision_interval_s=0.1))

    async def main() -> str:
        try:
            await _feed_until(monitor, lambda: len(server.requests) >= 2)
            await monitor.drain()
            return monitor.visual_context()
        finally:
            await monitor.close()

    context = asyncio.run(asyncio.wait_for(main(), 60))
    errors = [p for kind, p in events if kind == "system.error"]
    assert len(errors) == 1
    assert "HTTP 503" in errors[0]["reason"] and "model overloaded" in errors[0]["reason"]
    assert API_KEY not in errors[0]["reason"]
    assert context.startswith("[visual] user present")
    assert monitor.owned_tasks() == []


def test_the_shared_screen_goes_to_the_vision_model_with_the_camera(server: VisionServer) -> None:
    monitor = PerceptionMonitor({**LAYER, "base_url": server.base_url, "visual_tools": []}, emit=lambda *a: None,
                                engine=get_engine(), sampling=SamplingPolicy(idle_fps=4.0, vision_interval_s=0.1))
    page = np.full((400, 640, 3), 250, np.uint8)

    async def main() -> None:
        try:
            monitor.offer_screen_frame(page, 1000.0 * time.monotonic())
            await _feed_until(monitor, lambda: len(server.requests) >= 1)
        finally:
            await monitor.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    body = server.requests[0]["body"]
    assert "and the last image is the user's shared screen" in text_of(body)
    camera, screen = images_of(body)
    assert camera.shape == (384, 512, 3) and screen.shape == (320, 512, 3)
    assert screen.mean() > 200 > camera.mean()
