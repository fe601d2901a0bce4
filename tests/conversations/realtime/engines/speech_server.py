"""A local stand-in for a remote TTS service: it speaks the requested text for real (eSpeak NG,
resampled to 24 kHz), answers with raw s16le PCM in small chunks as the providers do, and
records every request so a test can check what was sent (path, headers, body)."""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

RATE = 24_000


def speak_24k(text: str) -> bytes:
    from conversations.realtime.audio import resample
    from conversations.realtime.engines.base import VoiceOptions
    from conversations.realtime.engines.registry import get_tts

    chunks = get_tts().synthesize_blocking(text, voice=VoiceOptions(voice="en-us", language="en"))
    pcm = np.concatenate([c.pcm for c in chunks]).astype(np.float32) / 32768
    out = resample(pcm, chunks[0].sample_rate, RATE)
    return (np.clip(out, -1, 1) * 32767).astype("<i2").tobytes()


def text_of(path: str, body: bytes) -> str:
    """The phrase a request asks for, whichever provider's format it uses."""
    if "cognitiveservices" in path:
        return re.sub(r"<[^>]+>", "", body.decode())
    data = json.loads(body)
    return data.get("input") or data.get("text") or data.get("transcript") or ""


class SpeechServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *, fail_status: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.sent: list[bytes] = []  # the PCM of each answer, as sent
        self.fail_status = fail_status
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> SpeechServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: SpeechServer

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                     "body": body})
        if self.server.fail_status:
            payload = json.dumps({"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}).encode()
            self.send_response(self.server.fail_status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        pcm = speak_24k(text_of(self.path, body))
        self.server.sent.append(pcm)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(0, len(pcm), 3001):  # odd sizes: a sample may be split across chunks
            piece = pcm[i: i + 3001]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
