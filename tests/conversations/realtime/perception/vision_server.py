"""A minimal OpenAI-compatible chat-completions server for tests: records every request and
streams a fixed SSE answer (no small multimodal model ships offline here, see MODELS.md)."""
from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

LIVE_ANSWER = ('S: a smiling woman in an orange flight suit\nQ1: yes, a blue pen\nQ2: no glasses\n'
               'C1: yes {"object": "pen"}\n')
ANALYSIS_ANSWER = "Q1: She showed a blue pen.\n"
API_KEY = "sk-test-0123456789abcdef"


class VisionServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []
        self.status = 200

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: VisionServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.server.status != 200:
            data = json.dumps({"error": {"message": "model overloaded"}}).encode()
            self.send_response(self.server.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        text = text_of(body)
        answer = ANALYSIS_ANSWER if "moments from the user's camera" in text else LIVE_ANSWER
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for i in range(0, len(answer), 9):  # streamed in small pieces, as a server would
            chunk = {"choices": [{"index": 0, "delta": {"content": answer[i:i + 9]}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n')
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args: Any) -> None:
        pass


def text_of(body: dict[str, Any]) -> str:
    user = body["messages"][-1]["content"]
    return "".join(p.get("text", "") for p in user if p.get("type") == "text")


def images_of(body: dict[str, Any]) -> list[np.ndarray]:
    out = []
    for part in body["messages"][-1]["content"]:
        if part.get("type") == "image_url":
            url = part["image_url"]["url"]
            assert url.startswith("data:image/jpeg;base64,")
            raw = base64.b64decode(url.split(",", 1)[1])
            out.append(cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR))
    return out


@contextmanager
def vision_server() -> Iterator[VisionServer]:
    srv = VisionServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)
