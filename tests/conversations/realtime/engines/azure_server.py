"""A local stand-in for Azure Speech's WebSockets, spoken to by Microsoft's real SDK.

Synthesis: it speaks the requested text for real (eSpeak NG at 24 kHz) and sends what the
service sends: ``turn.start``, word boundaries and visemes as ``audio.metadata`` (derived from
eSpeak's own word and phoneme timings, in 100 ns ticks), the audio as binary ``audio``
messages in pieces, then ``turn.end``.

Recognition: it collects the audio the SDK streams and, at its end, hears it for real (the
embedded Whisper) and answers with a detailed ``speech.phrase`` (words with offsets).

It records the handshakes and the messages the SDK sent, so a test can check the key, the
SSML, the language and the audio."""
from __future__ import annotations

import asyncio
import json
import re
import threading
from typing import Any

import numpy as np

from conversations.realtime.engines.timings import AZURE_VISEMES
from tests.conversations.realtime.engines.speech_server import speak

#: eSpeak mnemonic -> Azure viseme id (the inverse of the engine's table, plus close cousins)
_VISEME_OF = {name: vid for vid, name in AZURE_VISEMES.items()}
_VISEME_OF.update({"@": 1, "a": 1, "a#": 1, "3": 5, "I": 6, "i:": 6, "U": 4, "u": 7, "0": 3, "oU": 8,
                   "eI": 4, "e": 4, "b": 21, "m": 21, "v": 18, "z": 15, "Z": 16, "tS": 16, "dZ": 16,
                   "T": 19, "d": 19, "n": 19, "g": 20, "N": 20, "j": 6, "w": 7})


def speak_with_timings(text: str) -> tuple[bytes, list[dict], list[dict]]:
    """(24 kHz PCM, word boundary metadata, viseme metadata) for ``text``."""
    pcm, words, phonemes = speak(text)
    boundaries = [{"Type": "WordBoundary", "Data": {
        "Offset": int(start * 10_000), "Duration": int((end - start) * 10_000),
        "text": {"Text": word, "Length": len(word), "BoundaryType": "WordBoundary"}}} for word, start, end in words]
    visemes = [{"Type": "Viseme", "Data": {
        "Offset": int(start * 10_000), "VisemeId": 0 if name.startswith("_") else _VISEME_OF.get(name, 19),
        "IsLastAnimation": True, "AnimationChunk": ""}} for name, start in phonemes]
    return pcm, boundaries, visemes


class AzureSpeechServer:
    """``with AzureSpeechServer() as server:`` then point the SDK at ``server.host``."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse
        self.handshakes: list[dict[str, Any]] = []
        self.messages: list[str] = []
        self.sent: list[bytes] = []
        self.received: list[bytes] = []  # the audio of each recognition
        self.visemes: list[list[dict]] = []
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> AzureSpeechServer:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "the fake Azure server did not start"
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    async def _main(self) -> None:
        from websockets.asyncio.server import serve

        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with serve(self._handle, "127.0.0.1", 0, process_request=self._check) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    def _check(self, connection, request):  # noqa: ANN001, ANN202 - websockets objects
        self.handshakes.append({"path": request.path, "headers": {k.lower(): v for k, v in request.headers.raw_items()}})
        if self.refuse:
            return connection.respond(401, "Unauthorized: the subscription key is not valid\n")
        return None

    async def _handle(self, ws) -> None:  # noqa: ANN001
        if ws.request.path.startswith("/speech/recognition"):
            await self._recognise(ws)
            return
        async for message in ws:
            if not isinstance(message, str):
                continue
            self.messages.append(message)
            head, _, body = message.partition("\r\n\r\n")
            headers = dict(line.split(":", 1) for line in head.split("\r\n") if ":" in line)
            if headers.get("Path") != "ssml":
                continue
            rid = headers.get("X-RequestId", "")
            text = re.sub(r"<[^>]+>", "", body)
            pcm, words, visemes = await asyncio.to_thread(speak_with_timings, text)
            self.sent.append(pcm)
            self.visemes.append(visemes)

            def msg(path: str, payload: Any) -> str:
                return (f"X-RequestId:{rid}\r\nContent-Type:application/json; charset=utf-8\r\nPath:{path}\r\n\r\n"
                        + json.dumps(payload))

            await ws.send(msg("turn.start", {"context": {"serviceTag": "local"}}))
            for item in words + visemes:
                await ws.send(msg("audio.metadata", {"Metadata": [item]}))
            header = f"X-RequestId:{rid}\r\nContent-Type:audio/x-wav\r\nPath:audio\r\n".encode()
            for i in range(0, len(pcm), 4800):
                await ws.send(len(header).to_bytes(2, "big") + header + pcm[i: i + 4800])
            await ws.send(msg("turn.end", {}))

    async def _recognise(self, ws) -> None:  # noqa: ANN001
        audio, rid, started = bytearray(), "", False

        def msg(path: str, payload: Any) -> str:
            return (f"X-RequestId:{rid}\r\nContent-Type:application/json; charset=utf-8\r\nPath:{path}\r\n\r\n"
                    + json.dumps(payload))

        async for message in ws:
            if isinstance(message, str):
                self.messages.append(message)
                continue
            size = int.from_bytes(message[:2], "big")
            head, body = message[2: 2 + size].decode(), message[2 + size:]
            headers = dict(line.split(":", 1) for line in head.split("\r\n") if ":" in line)
            rid = headers.get("X-RequestId", rid)
            if not started:
                started = True
                await ws.send(msg("turn.start", {"context": {"serviceTag": "local"}}))
                await ws.send(msg("speech.startDetected", {"Offset": 0}))
            if body.startswith(b"RIFF"):
                continue  # the stream's WAV header
            if body:
                audio += body
                continue
            # the end of the audio: hear it
            self.received.append(bytes(audio))
            pcm = np.frombuffer(bytes(audio), "<i2").astype(np.float32) / 32768
            heard = await asyncio.to_thread(_hear, pcm)
            ticks = 10_000
            words = [{"Word": w.word, "Offset": int(w.start_ms * ticks), "Duration": int((w.end_ms - w.start_ms) * ticks)}
                     for w in heard.words]
            await ws.send(msg("speech.endDetected", {"Offset": len(pcm) * 625}))
            await ws.send(msg("speech.phrase", {
                # the phrase covers all the audio: the SDK takes Offset + Duration as the audio
                # acknowledged, and sends the rest again in a new turn
                "RecognitionStatus": "Success", "Offset": 0, "Duration": len(pcm) * 625, "DisplayText": heard.text,
                "NBest": [{"Confidence": 0.9, "Lexical": heard.text.lower(), "Display": heard.text, "Words": words}]}))
            await ws.send(msg("turn.end", {}))


def _hear(pcm):  # noqa: ANN001, ANN202
    from conversations.realtime.engines.registry import get_stt

    return get_stt("whisper-base").transcribe_blocking(pcm, language="en", word_timestamps=True)
