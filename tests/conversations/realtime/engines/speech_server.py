"""A local stand-in for a remote TTS service: it speaks the requested text for real (eSpeak NG,
resampled to 24 kHz), answers with raw s16le PCM in small chunks as the providers do, and
records every request so a test can check what was sent (path, headers, body)."""
from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

RATE = 24_000


def speak(text: str) -> tuple[bytes, list[tuple[str, float, float]], list[tuple[str, float]]]:
    """eSpeak NG speech at 24 kHz with its timings: (PCM, [(word, start_ms, end_ms)],
    [(eSpeak phoneme, start_ms)]), times from the start of the audio."""
    from conversations.realtime.audio import resample
    from conversations.realtime.engines.base import VoiceOptions
    from conversations.realtime.engines.registry import get_tts

    chunks = get_tts("espeak-ng").synthesize_blocking(text, voice=VoiceOptions(voice="en-us", language="en"))
    words, phonemes, offset = [], [], 0.0
    for c in chunks:
        words += [(w.word, offset + w.start_ms, offset + w.end_ms) for w in c.words]
        phonemes += [(p.phoneme, offset + p.start_ms) for p in c.phonemes]
        offset += c.duration_ms
    pcm = np.concatenate([c.pcm for c in chunks]).astype(np.float32) / 32768
    out = resample(pcm, chunks[0].sample_rate, RATE)
    return (np.clip(out, -1, 1) * 32767).astype("<i2").tobytes(), words, phonemes


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
        text = text_of(self.path, body)
        pcm, words, phonemes = speak(text)
        self.server.sent.append(pcm)
        self.send_response(200)
        if "/with-timestamps" in self.path:
            self.send_header("Content-Type", "application/json")
            pieces = elevenlabs_lines(text, pcm, words)
        elif self.path.startswith("/tts/sse"):
            self.send_header("Content-Type", "text/event-stream")
            pieces = cartesia_events(pcm, words, phonemes)
        else:
            self.send_header("Content-Type", "application/octet-stream")
            # odd sizes: a sample may be split across chunks
            pieces = [pcm[i: i + 3001] for i in range(0, len(pcm), 3001)]
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in pieces:
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


def _pieces(pcm: bytes, size: int = 9600) -> list[tuple[float, float, bytes]]:
    """(start_ms, end_ms, bytes) of consecutive 200 ms pieces."""
    ms = 1000.0 / RATE / 2
    return [(i * ms, (i + size) * ms, pcm[i: i + size]) for i in range(0, len(pcm), size)]


def elevenlabs_lines(text: str, pcm: bytes, words: list[tuple[str, float, float]]) -> list[bytes]:
    """ElevenLabs' with-timestamps stream: a JSON line per audio piece, with the alignment of the
    characters whose times begin within it (a word's time spread over its letters; the spaces
    and punctuation between words fill the gaps). Some lines have no alignment, as in the real one."""
    starts, ends = [0.0] * len(text), [0.0] * len(text)
    pos, last = 0, 0.0
    for word, begin, end in words:
        at = text.find(word, pos)
        if at < 0:
            continue
        for i in range(pos, at):  # the gap before the word
            starts[i], ends[i] = last, begin
        step = (end - begin) / len(word)
        for k in range(len(word)):
            starts[at + k], ends[at + k] = begin + k * step, begin + (k + 1) * step
        pos, last = at + len(word), end
    for i in range(pos, len(text)):
        starts[i], ends[i] = last, last
    lines, done = [], 0
    for begin, end, audio in _pieces(pcm):
        mine = [i for i in range(done, len(text)) if starts[i] < end]
        item = {"audio_base64": base64.b64encode(audio).decode(), "alignment": None, "normalized_alignment": None}
        if mine:
            item["alignment"] = {"characters": [text[i] for i in mine],
                                 "character_start_times_seconds": [starts[i] / 1000 for i in mine],
                                 "character_end_times_seconds": [ends[i] / 1000 for i in mine]}
            done = mine[-1] + 1
        lines.append(json.dumps(item).encode() + b"\n")
    return lines


#: eSpeak mnemonic -> IPA, for the phoneme timestamps Cartesia sends
_IPA_OF = {"@": "ə", "3": "ɚ", "3:": "ɜː", "a": "æ", "A:": "ɑː", "0": "ɒ", "O:": "ɔː", "V": "ʌ", "E": "ɛ",
           "e": "e", "I": "ɪ", "i": "i", "i:": "iː", "U": "ʊ", "u:": "uː", "aI": "aɪ", "aU": "aʊ", "eI": "eɪ",
           "oU": "oʊ", "OI": "ɔɪ", "T": "θ", "D": "ð", "S": "ʃ", "Z": "ʒ", "tS": "tʃ", "dZ": "dʒ", "N": "ŋ",
           "r": "ɹ", "g": "ɡ"}


def cartesia_events(pcm: bytes, words: list[tuple[str, float, float]], phonemes: list[tuple[str, float]]) -> list[bytes]:
    """Cartesia's SSE stream: audio chunks, then the word and phoneme timestamps of each piece
    after its audio (as the service sends them), then done."""
    def event(kind: str, payload: dict) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n".encode()

    out, w, p = [], 0, 0
    for begin, end, audio in _pieces(pcm):
        out.append(event("chunk", {"data": base64.b64encode(audio).decode(), "done": False, "status_code": 206}))
        ws = [x for x in words[w:] if x[1] < end]
        w += len(ws)
        if ws:
            out.append(event("timestamps", {"word_timestamps": {
                "words": [x[0] for x in ws], "start": [x[1] / 1000 for x in ws], "end": [x[2] / 1000 for x in ws]}}))
        ps = [x for x in phonemes[p:] if x[1] < end and not x[0].startswith("_")]
        p += len([x for x in phonemes[p:] if x[1] < end])
        if ps:
            out.append(event("phoneme_timestamps", {"phoneme_timestamps": {
                "phonemes": [_IPA_OF.get(x[0], x[0]) for x in ps], "start": [x[1] / 1000 for x in ps],
                "end": [x[1] / 1000 for x in ps]}}))
    out.append(event("done", {"done": True, "status_code": 200}))
    return out
