"""``/healthz``: is every part this process needs available?

JSON ``{"status": "ok"|"degraded", "checks": {name: {"ok", "required", "detail"}}}``; HTTP 503
when a required part is not available.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def _check_database() -> tuple[bool, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return True, connection.vendor


async def _layer_roundtrip() -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel("healthz.")
    token = uuid.uuid4().hex
    await layer.send(channel, {"type": "healthz.ping", "token": token})
    message = await asyncio.wait_for(layer.receive(channel), timeout=2)
    if message.get("token") != token:
        raise RuntimeError("channel layer returned a different message")
    return type(layer).__name__


def _check_channel_layer() -> tuple[bool, str]:
    return True, async_to_sync(_layer_roundtrip)()


def _check_broker() -> tuple[bool, str]:
    from cvi_site.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return True, conn.transport_cls if isinstance(conn.transport_cls, str) else conn.as_uri()


def _check_engines() -> dict[str, dict]:
    try:
        from conversations.realtime.engines.models import check_model_files
    except ImportError as exc:
        return {"engines": {"ok": False, "required": True, "detail": f"engine package missing: {exc}"}}
    out = {}
    for name, info in check_model_files(settings.MODELS_DIR).items():
        out[f"engine:{name}"] = {
            "ok": bool(info.get("ok")),
            "required": bool(info.get("required", True)),
            "detail": info.get("detail", ""),
        }
    return out


def _check_llm_service() -> tuple[bool, str]:
    from cvi_site.llmservice import check_health

    return check_health(settings.LLM_URL)


def _timed(fn) -> dict:
    started = time.perf_counter()
    try:
        ok, detail = fn()
    except Exception as exc:  # every failure is reported, none is raised
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return {"ok": ok, "required": True, "detail": detail, "ms": round(1000 * (time.perf_counter() - started), 1)}


def collect_health() -> dict:
    checks: dict[str, dict] = {}
    for name, fn in (("database", _check_database), ("channel_layer", _check_channel_layer), ("broker", _check_broker)):
        checks[name] = _timed(fn)
    if settings.LLM_URL:
        checks["llm_service"] = _timed(_check_llm_service)
    checks.update(_check_engines())
    healthy = all(c["ok"] for c in checks.values() if c["required"])
    return {"status": "ok" if healthy else "unavailable", "checks": checks, "process": _process()}


def _process() -> dict:
    """This server process: its live calls (as admission control counts them), its face frame
    rate and where its event loop went (stalls)."""
    from conversations.realtime.loopwatch import loop_watch
    from conversations.realtime.media import VIDEO_GOVERNOR
    from conversations.live.registry import live_session_count

    watch = loop_watch()
    return {"pid": os.getpid(), "live_calls": live_session_count(),
            "face_video_fps": VIDEO_GOVERNOR.fps,
            "event_loop": watch.stats() if watch is not None else None}


@require_GET
def healthz(request):
    report = collect_health()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
