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
import multiprocessing
import os
import resource
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from django.core.management.base import BaseCommand, CommandError

from bench.live import VOICES, load_utterances, speech, stats, write_json


#: every wait of the benchmark has a limit: a call that misses one is reported, never waited on forever
CONNECT_TIMEOUT_S = 60
GREETING_TIMEOUT_S = 60
REPLY_START_TIMEOUT_S = 45
REPLY_END_TIMEOUT_S = 90
SESSION_GONE_TIMEOUT_S = 60


class Command(BaseCommand):
    help = "Utterance-to-utterance latency over real WebRTC (prints figures, writes JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--turns", type=int, default=10, help="turns per conversation")
        parser.add_argument("--minutes", type=float, default=0.0,
                            help="soak: keep every conversation talking this long (instead of --turns)")
        parser.add_argument("--concurrency", type=int, default=1, help="conversations at once")
        parser.add_argument("--utterances", help="file with one sentence per line")
        parser.add_argument("--url", help="an already running site (default: start one on a free port)")
        parser.add_argument("--api-key", help="API key for --url")
        parser.add_argument("--audio-only", action="store_true", help="no face video")
        parser.add_argument("--json", dest="json_path", help="write the figures here")
        parser.add_argument("--log-level", default="WARNING", help="the started site's LOG_LEVEL (its daphne.log)")

    def handle(self, *args, turns, minutes, concurrency, utterances, url, api_key, audio_only, json_path, log_level,
               **options):
        if turns < 1 or concurrency < 1 or minutes < 0:
            raise CommandError("--turns and --concurrency must be at least 1, --minutes not negative")
        try:
            texts = load_utterances(utterances)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        procs: list[subprocess.Popen] = []
        site = None
        try:
            if not url:
                site = self._start_site(log_level.upper())
                url, api_key, procs = site.url, site.api_key, site.procs
            elif not api_key:
                raise CommandError("--url needs --api-key")
            plan = f"{minutes:g} minute(s)" if minutes else f"{turns} turn(s)"
            self.stdout.write(f"site: {url}; {concurrency} conversation(s) × {plan}")
            load_before = os.getloadavg()
            rss_start = _rss_mb(procs)
            cpu_start, wall_start = _cpu_s(procs), time.monotonic()
            data = asyncio.run(self._run(url, api_key, texts, turns, minutes, concurrency, audio_only, procs))
            # growth is counted from the first sample a minute into the calls (engines, faces and
            # caches loaded by then), so it shows what the calls keep adding, not the warm-up
            warm = data.pop("rss_warm") or rss_start
            data["rss_mb"] = {"before_calls": rss_start, "warm": warm, "end": data.pop("rss_end")}
            data["rss_mb"]["growth"] = {k: round(data["rss_mb"]["end"].get(k, 0) - v, 1) for k, v in warm.items()}
            if site is not None:
                data["server_stages_ms"] = _server_stages(site)
            data["load_avg"] = {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)}
            # where the box's CPU went: the server's processes vs the benchmark's own clients
            # (which a real deployment does not carry: users' browsers run elsewhere)
            wall = time.monotonic() - wall_start
            server_cpu = {k: round(v - cpu_start.get(k, 0.0), 1) for k, v in _cpu_s(procs).items()}
            data["cpu_s"] = {"wall_s": round(wall, 1), "server": server_cpu,
                             "clients": data.pop("client_cpu_s"),
                             "cores": os.cpu_count()}
        finally:
            for proc in procs:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.stdout.write(json.dumps(data, indent=2))
        write_json(json_path, data)

    def _start_site(self, log_level: str):
        from bench.livesite import start_site

        data_dir = Path(tempfile.mkdtemp(prefix="opencvi-bench-"))
        self.stdout.write(f"starting a site in {data_dir} …")
        return start_site(data_dir, setup=True, account="bench", llm_service=True,
                          env_overrides={"MAX_CONCURRENT_CONVERSATIONS": "64", "LOG_LEVEL": log_level})

    async def _run(self, url, api_key, texts, turns, minutes, concurrency, audio_only, procs):
        async with httpx.AsyncClient(base_url=url, headers={"x-api-key": api_key}, timeout=30) as http:
            convs = []
            refused = []
            for _ in range(concurrency):
                r = await http.post("/v2/conversations", json={
                    "persona_id": "pstock000001", "replica_id": "rstock000001", "audio_only": audio_only,
                    "custom_greeting": "Hi.", "properties": {"participant_left_timeout": 0}})
                if r.status_code != 200:
                    refused.append(f"{r.status_code} {r.text[:200]}")
                    continue
                convs.append(r.json()["conversation_id"])
            if not convs:
                raise CommandError(f"creating a conversation failed: {refused[0]}")
            # Speech is made once, before any call starts, so synthesis never competes with the calls.
            audio = [speech(text, rate=48_000, voice=VOICES[i % len(VOICES)]) for i, text in enumerate(texts)]
            ws_base = url.replace("http://", "ws://").replace("https://", "wss://")
            deadline = time.time() + 60 * minutes if minutes else None
            # Each participant is its own process, as each person has their own browser: one
            # process holding every client would measure its own event loop, not the server.
            limit = (60 * minutes if minutes else turns * (REPLY_START_TIMEOUT_S + REPLY_END_TIMEOUT_S + 60)) \
                + CONNECT_TIMEOUT_S + GREETING_TIMEOUT_S + 60
            server_before = await _server_process(http)
            rss_samples: list[tuple[float, dict]] = []
            sampler = asyncio.create_task(_sample_rss(procs, rss_samples))
            pool = ProcessPoolExecutor(max_workers=len(convs), mp_context=multiprocessing.get_context("spawn"))
            loop = asyncio.get_running_loop()
            try:
                futures = [loop.run_in_executor(pool, talk_in_process, f"{ws_base}/ws/conversations/{cid}/",
                                                audio, turns, deadline, i)
                           for i, cid in enumerate(convs)]
                results = []
                for future in futures:
                    try:
                        results.append(await asyncio.wait_for(future, timeout=limit))
                    except asyncio.TimeoutError:
                        results.append({**_empty_result(), "dropped": f"no result in {limit:.0f} s"})
                    except Exception as exc:  # noqa: BLE001 - a client process that died
                        results.append({**_empty_result(), "dropped": f"client failed: {type(exc).__name__}: {exc}"})
            finally:
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
            sampler.cancel()
            server_after = await _server_process(http)
            left = await _sessions_left(http)
        started = rss_samples[0][0] if rss_samples else 0.0
        warm = next((rss for t, rss in rss_samples if t - started >= WARM_S), None)
        u2u = [r for conv in results for r in conv["u2u_ms"]]
        fps = [conv["video_fps"] for conv in results if conv["video_fps"]]
        offsets = [o for conv in results for o in conv["av_offset_ms"]]
        loop_stats = (server_after or {}).get("event_loop") or {}
        clients = [conv["client_loop"] for conv in results if conv.get("client_loop")]
        worst_client = max(clients, key=lambda c: c["longest_ms"], default={})
        return {
            "concurrency": concurrency,
            "turns_asked": sum(conv["asked"] for conv in results),
            "turns": len(u2u),
            "missed_turns": sum(conv["missed"] for conv in results),
            "dropped_calls": sum(1 for conv in results if conv["dropped"]),
            "refused_calls": len(refused),
            "drops": [conv["dropped"] for conv in results if conv["dropped"]],
            "u2u_ms": stats(u2u),
            "video_fps": {"p50": round(float(np.median(fps)), 1) if fps else None,
                          "min": round(float(min(fps)), 1) if fps else None,
                          "per_call": [round(f, 1) for f in fps]},
            "av_offset_ms": {"p50": round(float(np.median(np.abs(offsets))), 1) if offsets else None,
                             "max": round(float(np.max(np.abs(offsets))), 1) if offsets else None},
            "server_event_loop": {
                "stalls": loop_stats.get("stalls", 0) - ((server_before or {}).get("event_loop") or {}).get("stalls", 0),
                "longest_ms": loop_stats.get("longest_ms"), "longest_where": loop_stats.get("longest_where")},
            "client_event_loop": {"stalls": sum(c["stalls"] for c in clients),
                                  "longest_ms": worst_client.get("longest_ms"),
                                  "longest_where": worst_client.get("longest_where")},
            "sessions_left": left,
            "rss_end": _rss_mb(procs),
            "rss_warm": warm,
            "client_cpu_s": round(sum(conv.get("cpu_s", 0.0) for conv in results), 1),
        }


def _empty_result() -> dict:
    return {"u2u_ms": [], "video_fps": 0.0, "av_offset_ms": [], "missed": 0, "asked": 0, "dropped": "",
            "client_loop": None, "cpu_s": 0.0}


def talk_in_process(ws_url, audio, turns, deadline, offset) -> dict:
    """One participant in its own process (the benchmark's pool runs this)."""
    return asyncio.run(_talk_watched(ws_url, audio, turns, deadline, offset=offset))


async def _talk_watched(ws_url, audio, turns, deadline, *, offset) -> dict:
    from conversations.realtime.loopwatch import LoopWatch

    watch = LoopWatch(name="bench client")  # the client's own loop: a stall here is not the server's
    watch.start()
    try:
        out = await _talk(ws_url, audio, turns, deadline, offset=offset)
    finally:
        await watch.stop()
    stats_ = watch.stats()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_s"] = usage.ru_utime + usage.ru_stime
    out["client_loop"] = {"stalls": stats_["stalls"], "longest_ms": stats_["longest_ms"],
                          "longest_where": stats_["longest_where"]}
    return out


async def _talk(ws_url, audio, turns, deadline, *, offset):
    from bench.client import CVIClient, WebsocketSignalling

    mouth = MouthTracker()
    signalling = WebsocketSignalling(ws_url)
    out = _empty_result()
    try:
        await signalling.open()
    except Exception as exc:  # noqa: BLE001 - reported as a dropped call
        out["dropped"] = f"could not open the WebSocket: {type(exc).__name__}: {exc}"
        return out
    client = CVIClient(signalling, keep_audio=False, on_video=mouth.add)
    video_since = None
    try:
        try:
            await client.connect(timeout=CONNECT_TIMEOUT_S)
            await client.wait_event("conversation.replica.stopped_speaking", timeout=GREETING_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - join refused, no transport, no greeting
            out["dropped"] = f"join: {type(exc).__name__}: {exc}"
            return out
        video_since = time.monotonic()
        turn = 0
        while (time.time() < deadline) if deadline else (turn < turns):
            if client.pc.connectionState in ("failed", "closed") or client.ended is not None:
                out["dropped"] = (f"after {turn} turn(s): transport {client.pc.connectionState}, "
                                  f"ended={client.ended}")
                break
            pcm = audio[(turn + offset) % len(audio)]
            turn += 1
            out["asked"] += 1
            try:
                t_voiced = await asyncio.wait_for(client.say(pcm), timeout=60 + len(pcm) / 48_000)
                t_started, _ = await client.wait_event("conversation.replica.started_speaking",
                                                       timeout=REPLY_START_TIMEOUT_S, after=t_voiced)
                await client.wait_event("conversation.replica.stopped_speaking", timeout=REPLY_END_TIMEOUT_S,
                                        after=t_started)
            except (TimeoutError, asyncio.TimeoutError):
                out["missed"] += 1
                continue
            first = client.first_reply_audio_after(t_voiced)
            if first is None:
                out["missed"] += 1
                continue
            out["u2u_ms"].append(1000 * (first - t_voiced))
            onset = mouth.onset_after(first - 0.5)
            if onset is not None:
                out["av_offset_ms"].append(1000 * (onset - first))
            await asyncio.sleep(1.0)  # a person pauses before the next question
        if not out["dropped"] and client.pc.connectionState in ("failed", "closed"):
            out["dropped"] = f"after {turn} turn(s): transport {client.pc.connectionState}"
    finally:
        if video_since is not None:
            out["video_fps"] = client.video_fps(since=video_since)
        try:
            await asyncio.wait_for(client.close(), timeout=30)
        except Exception:  # noqa: BLE001 - already gone
            pass
    return out


async def _server_process(http: httpx.AsyncClient) -> dict | None:
    """The server process's own figures from /healthz (live calls, event-loop stalls)."""
    try:
        r = await http.get("/healthz", timeout=10)
        return r.json().get("process")
    except Exception:  # noqa: BLE001 - an older server or a proxy that hides it
        return None


async def _sessions_left(http: httpx.AsyncClient) -> int | None:
    """Live sessions still held once every client left (should reach 0: nothing left behind)."""
    deadline = time.monotonic() + SESSION_GONE_TIMEOUT_S
    live = None
    while time.monotonic() < deadline:
        proc = await _server_process(http)
        live = proc.get("live_calls") if proc else None
        if not live:
            return live
        await asyncio.sleep(1.0)
    return live


STAGES_SCRIPT = """
import json
from conversations.models import Utterance
rows = [u.latency.get("stages") for u in Utterance.objects.filter(role="assistant") if isinstance(u.latency, dict)]
print(json.dumps([r for r in rows if r]))
"""


def _server_stages(site) -> dict:
    """Medians of the server's own per-reply stage record (what the transcript page charts)."""
    try:
        rows = json.loads(site.manage("shell", "-c", STAGES_SCRIPT).strip().splitlines()[-1])
    except Exception as exc:  # noqa: BLE001 - the figures above stand without it
        return {"error": str(exc)[:200]}
    keys = sorted({k for r in rows for k in r})
    return {k: stats([r[k] for r in rows if r.get(k) is not None])["p50"] for k in keys} | {"replies": len(rows)}


WARM_S = 60.0


async def _sample_rss(procs, out: list) -> None:
    while True:
        out.append((time.monotonic(), _rss_mb(procs)))
        await asyncio.sleep(10)


def _cpu_s(procs) -> dict[str, float]:
    """CPU seconds (user + system) each started process has used so far."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for proc in procs:
        try:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[f"{Path(proc.args[0]).name}:{proc.pid}"] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return out


def _rss_mb(procs) -> dict[str, float]:
    """Resident memory of each process the benchmark started (MB)."""
    out = {}
    for proc in procs:
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[f"{Path(proc.args[0]).name}:{proc.pid}"] = round(int(line.split()[1]) / 1024, 1)
        except OSError:
            continue
    return out


class MouthTracker:
    """Finds when the face starts speaking in the received video: the mouth region (located
    once with MediaPipe's face mesh, in a thread so the clients' loop never waits for it)
    starts to change against the listening face."""

    def __init__(self) -> None:
        self.box = None
        self.samples: list[tuple[float, float]] = []
        self._reference = None
        self._locating = False

    def add(self, t: float, rgb: np.ndarray) -> None:
        if self.box is None:
            if not self._locating:
                self._locating = True
                threading.Thread(target=self._locate, args=(rgb.copy(),), daemon=True).start()
            return
        y0, y1, x0, x1 = self.box
        patch = rgb[y0:y1, x0:x1].astype(np.float32).mean(axis=2)
        if self._reference is None:
            self._reference = patch
        # Mouth opening darkens the region; track it against the running idle reference.
        score = float(np.abs(patch - self._reference).mean())
        self._reference = 0.95 * self._reference + 0.05 * patch if score < 4 else self._reference
        self.samples.append((t, score))

    def _locate(self, rgb: np.ndarray) -> None:
        self.box = _mouth_box(rgb)
        self._locating = False  # no face found: a later frame tries again

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
