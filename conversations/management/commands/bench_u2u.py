"""End-to-end latency as a user feels it: real WebRTC clients talking to real conversations.

Starts the site on a free port (or uses ``--url``), creates conversations through the REST
API, and talks to each with an aiortc client sending espeak-ng speech in real time. Measured
at the client: from the last voiced sample sent to the first reply audio sample received
above a level threshold; plus the face video's frame rate and the A/V offset (the face's
mouth opening vs the reply audio's onset).
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from django.core.management.base import BaseCommand, CommandError

from conversations.benchmarks import VOICES, load_utterances, speech, stats, write_json


class Command(BaseCommand):
    help = "Utterance-to-utterance latency over real WebRTC (prints figures, writes JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--turns", type=int, default=10, help="turns per conversation")
        parser.add_argument("--concurrency", type=int, default=1, help="conversations at once")
        parser.add_argument("--utterances", help="file with one sentence per line")
        parser.add_argument("--url", help="an already running site (default: start one on a free port)")
        parser.add_argument("--api-key", help="API key for --url")
        parser.add_argument("--audio-only", action="store_true", help="no face video")
        parser.add_argument("--json", dest="json_path", help="write the figures here")

    def handle(self, *args, turns, concurrency, utterances, url, api_key, audio_only, json_path, **options):
        if turns < 1 or concurrency < 1:
            raise CommandError("--turns and --concurrency must be at least 1")
        try:
            texts = load_utterances(utterances)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        procs: list[subprocess.Popen] = []
        try:
            if not url:
                url, api_key, procs = self._start_site()
            elif not api_key:
                raise CommandError("--url needs --api-key")
            self.stdout.write(f"site: {url}; {concurrency} conversation(s) × {turns} turn(s)")
            results = asyncio.run(self._run(url, api_key, texts, turns, concurrency, audio_only))
        finally:
            for proc in procs:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        u2u = [r for conv in results for r in conv["u2u_ms"]]
        fps = [conv["video_fps"] for conv in results if conv["video_fps"]]
        offsets = [o for conv in results for o in conv["av_offset_ms"]]
        data = {
            "turns": len(u2u),
            "concurrency": concurrency,
            "u2u_ms": stats(u2u),
            "video_fps": {"p50": round(float(np.median(fps)), 1) if fps else None,
                          "min": round(float(min(fps)), 1) if fps else None},
            "av_offset_ms": {"p50": round(float(np.median(np.abs(offsets))), 1) if offsets else None,
                             "max": round(float(np.max(np.abs(offsets))), 1) if offsets else None},
            "missed_turns": sum(conv["missed"] for conv in results),
        }
        self.stdout.write(json.dumps(data, indent=2))
        write_json(json_path, data)

    def _start_site(self):
        from cvi_site.livesite import start_site

        data_dir = Path(tempfile.mkdtemp(prefix="opencvi-bench-"))
        self.stdout.write(f"starting a site in {data_dir} …")
        site = start_site(data_dir, setup=True, account="bench",
                          env_overrides={"MAX_CONCURRENT_CONVERSATIONS": "64", "LOG_LEVEL": "WARNING"})
        return site.url, site.api_key, site.procs

    async def _run(self, url, api_key, texts, turns, concurrency, audio_only):
        async with httpx.AsyncClient(base_url=url, headers={"x-api-key": api_key}, timeout=30) as http:
            convs = []
            for _ in range(concurrency):
                r = await http.post("/v2/conversations", json={
                    "persona_id": "pstock000001", "replica_id": "rstock000001", "audio_only": audio_only,
                    "custom_greeting": "Hi.", "properties": {"participant_left_timeout": 0}})
                if r.status_code != 200:
                    raise CommandError(f"creating a conversation failed: {r.status_code} {r.text}")
                convs.append(r.json()["conversation_id"])
            # Speech is made once, before any call starts, so synthesis never competes with the calls.
            audio = [speech(text, rate=48_000, voice=VOICES[i % len(VOICES)]) for i, text in enumerate(texts)]
            ws_base = url.replace("http://", "ws://").replace("https://", "wss://")
            return await asyncio.gather(*[
                self._talk(f"{ws_base}/ws/conversations/{cid}/", audio, turns, offset=i)
                for i, cid in enumerate(convs)
            ])

    async def _talk(self, ws_url, audio, turns, *, offset):
        from conversations.realtime.client import CVIClient, WebsocketSignalling

        signalling = WebsocketSignalling(ws_url)
        await signalling.open()
        mouth = MouthTracker()
        client = CVIClient(signalling, keep_audio=False, on_video=mouth.add)
        u2u, offsets, missed = [], [], 0
        try:
            await client.connect(timeout=60)
            await client.wait_event("conversation.replica.stopped_speaking", timeout=60)  # the greeting
            video_since = time.monotonic()
            for turn in range(turns):
                pcm = audio[(turn + offset) % len(audio)]
                t_voiced = await client.say(pcm)
                try:
                    t_started, _ = await client.wait_event("conversation.replica.started_speaking", timeout=30, after=t_voiced)
                    await client.wait_event("conversation.replica.stopped_speaking", timeout=60, after=t_started)
                except TimeoutError:
                    missed += 1
                    continue
                first = client.first_reply_audio_after(t_voiced)
                if first is None:
                    missed += 1
                    continue
                u2u.append(1000 * (first - t_voiced))
                onset = mouth.onset_after(first - 0.5)
                if onset is not None:
                    offsets.append(1000 * (onset - first))
                await asyncio.sleep(1.0)
            fps = client.video_fps(since=video_since)
        finally:
            await client.close()
        return {"u2u_ms": u2u, "video_fps": fps, "av_offset_ms": offsets, "missed": missed}


class MouthTracker:
    """Finds when the face starts speaking in the received video: the mouth region (located
    once with MediaPipe's face mesh) starts to change against the listening face."""

    def __init__(self) -> None:
        self.box = None
        self.samples: list[tuple[float, float]] = []
        self._reference = None

    def add(self, t: float, rgb: np.ndarray) -> None:
        if self.box is None:
            self.box = _mouth_box(rgb)
            if self.box is None:
                return
        y0, y1, x0, x1 = self.box
        patch = rgb[y0:y1, x0:x1].astype(np.float32).mean(axis=2)
        if self._reference is None:
            self._reference = patch
        # Mouth opening darkens the region; track it against the running idle reference.
        score = float(np.abs(patch - self._reference).mean())
        self._reference = 0.95 * self._reference + 0.05 * patch if score < 4 else self._reference
        self.samples.append((t, score))

    def onset_after(self, t0: float, threshold: float = 6.0):
        for t, score in self.samples:
            if t >= t0 and score >= threshold:
                return t
        return None


def _mouth_box(rgb: np.ndarray):
    import mediapipe as mp

    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        result = mesh.process(rgb)
    if not result.multi_face_landmarks:
        return None
    h, w = rgb.shape[:2]
    pts = np.array([(p.x * w, p.y * h) for p in result.multi_face_landmarks[0].landmark])
    lips = pts[[61, 291, 0, 17, 13, 14]]
    x0, y0 = lips.min(axis=0) - 6
    x1, y1 = lips.max(axis=0) + 6
    return int(max(0, y0)), int(min(h, y1)), int(max(0, x0)), int(min(w, x1))
