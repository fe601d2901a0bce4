"""PAL Maker conversation pages: the list (status, duration) and a conversation's page with
the transcript, its events and the per-turn latency chart. The live call page itself
(``/c/<id>/``) belongs to the transport."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from conversations import selectors, services
from conversations.models import Conversation, Utterance
from conversations.realtime.events import GUARDRAIL_TRIGGERED, OBJECTIVE_COMPLETED, OBJECTIVE_PENDING
from cvi_site.api import base_url
from cvi_site.selectors import webhook_deliveries
from cvi_site.webhooks import retry_policy

#: the stacked segments of one reply's latency, in the order they happen. Each ends at a
#: mark of ``TurnMetrics.as_dict()`` (ms from the end of the user's speech).
SEGMENTS: tuple[tuple[str, str, str], ...] = (
    ("turn_wait", "Turn wait", "turn_decided_ms"),
    ("stt", "STT", "transcript_final_ms"),
    ("llm", "LLM first token", "llm_first_token_ms"),
    ("phrase", "First phrase", "first_phrase_ms"),
    ("tts", "TTS", "tts_first_audio_ms"),
)
#: each segment's own stage duration in ``latency["stages"]`` (overlaps when speculative)
STAGE_KEYS = {"turn_wait": "turn_wait_ms", "stt": "stt_ms", "llm": "llm_first_token_ms",
              "phrase": "first_phrase_ms", "tts": "tts_first_audio_ms"}
COLOURS = {"turn_wait": "#94a3b8", "stt": "#0ea5e9", "llm": "#8b5cf6", "phrase": "#f59e0b", "tts": "#10b981"}


#: the documented shutdown reasons, as a person would say them
SHUTDOWN_TEXT = {
    "max_call_duration reached": "the maximum call duration was reached",
    "participant_left_timeout reached": "everyone left",
    "participant_absent_timeout reached": "nobody joined in time",
    "end_conversation_endpoint_hit": "ended from the API or the PAL Maker",
    "exception_encountered_during_conversation_startup": "an error while starting",
    "test_mode": "test mode (never started)",
}


def duration_of(conversation: Conversation, now=None) -> timedelta | None:
    start = conversation.started_at or conversation.created_at
    end = conversation.ended_at or (now or timezone.now() if conversation.status == Conversation.Status.ACTIVE else None)
    if start is None or end is None:
        return None
    return max(end - start, timedelta(0))


def format_duration(value: timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@dataclass
class TurnLatency:
    turn: str
    segments: list[tuple[str, str, float]]  # (key, label, ms on the critical path)
    stages: dict[str, float]  # segment key -> the stage's own duration (ms), where recorded
    total_ms: float
    u2u_ms: float | None
    interrupted: bool
    speculative: bool


def turn_latencies(utterances) -> list[TurnLatency]:
    """One row per assistant reply that has a latency record: the time from the end of the
    user's speech to the reply's first audio, split into the stages of the pipeline.

    The marks are cumulative, and with speculative inference a later stage can finish before
    an earlier one (the LLM may start before the turn is decided), so each segment is the
    part of the critical path that stage added: ``max(0, mark - latest mark so far)``.
    """
    rows = []
    for i, u in enumerate(utterances, start=1):
        if u.role != Utterance.Role.ASSISTANT or not isinstance(u.latency, dict) or not u.latency:
            continue
        lat = u.latency
        if not any(isinstance(lat.get(mark), (int, float)) for _, _, mark in SEGMENTS):
            continue
        segments, reached = [], 0.0
        for key, label, mark in SEGMENTS:
            value = lat.get(mark)
            if isinstance(value, (int, float)) and value > reached:
                segments.append((key, label, float(value) - reached))
                reached = float(value)
            else:
                segments.append((key, label, 0.0))
        u2u = lat.get("u2u_ms")
        own = lat.get("stages") if isinstance(lat.get("stages"), dict) else {}
        stages = {key: float(own[name]) for key, name in STAGE_KEYS.items() if isinstance(own.get(name), (int, float))}
        rows.append(TurnLatency(turn=f"Turn {u.turn_idx or len(rows) + 1}", segments=segments, stages=stages,
                                total_ms=reached,
                                u2u_ms=float(u2u) if isinstance(u2u, (int, float)) else None,
                                interrupted=bool(lat.get("interrupted") or u.interrupted),
                                speculative=bool(lat.get("speculative"))))
    return rows


def latency_chart(rows: list[TurnLatency], *, width: int = 760) -> dict[str, Any]:
    """Geometry of the stacked-bar SVG (drawn by the template; no chart library)."""
    label_w, right_pad, bar_h, gap, top = 64, 70, 18, 8, 8
    plot_w = width - label_w - right_pad
    longest = max([r.total_ms for r in rows] + [r.u2u_ms or 0 for r in rows] + [1.0])
    step = _nice_step(longest)
    scale_max = step * max(1, -(-longest // step))
    px = plot_w / scale_max
    bars = []
    for i, row in enumerate(rows):
        y = top + i * (bar_h + gap)
        x = float(label_w)
        rects = []
        for key, label, ms in row.segments:
            if ms <= 0:
                continue
            w = ms * px
            title = f"{row.turn}: {label} {ms:.0f} ms"
            if key in row.stages and abs(row.stages[key] - ms) >= 1:
                title += f" on the critical path (the stage itself took {row.stages[key]:.0f} ms)"
            rects.append({"x": round(x, 1), "w": round(max(w, 0.5), 1), "colour": COLOURS[key], "title": title})
            x += w
        marker = round(label_w + row.u2u_ms * px, 1) if row.u2u_ms else None
        bars.append({"y": y, "label": row.turn, "rects": rects, "end_x": round(x, 1), "marker": marker,
                     "total": f"{(row.u2u_ms or row.total_ms):.0f} ms", "text_x": round(max(x, marker or 0) + 6, 1),
                     "interrupted": row.interrupted})
    height = top + len(rows) * (bar_h + gap) + 24
    ticks = [{"x": round(label_w + t * px, 1), "label": f"{t / 1000:g} s" if scale_max >= 2000 else f"{t:.0f} ms"}
             for t in _range(0, scale_max, step)]
    return {"width": width, "height": height, "bar_h": bar_h, "bars": bars, "ticks": ticks, "axis_y": height - 20,
            "label_w": label_w, "legend": [(label, COLOURS[key]) for key, label, _ in SEGMENTS]}


def _nice_step(longest: float) -> float:
    for step in (50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000):
        if longest / step <= 8:
            return float(step)
    return 50000.0


def _range(start: float, stop: float, step: float):
    t = start
    while t <= stop + 1e-6:
        yield t
        t += step


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def _short_json(value: Any, limit: int = 300) -> str:
    if not value:
        return ""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


@login_required
def conversation_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") if request.GET.get("status") in Conversation.Status.values else None
    qs = selectors.conversation_list(account=request.user, status=status).annotate(
        turns=Count("utterances", filter=~Q(utterances__role=Utterance.Role.SYSTEM)))
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = [(c, format_duration(duration_of(c, now))) for c in page]
    return render(request, "conversations/list.html", {"page": page, "rows": rows, "status": status or ""})


@login_required
def conversation_detail(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = get_object_or_404(selectors.conversation_list(account=request.user), pk=conversation_id)
    utterances = list(selectors.conversation_utterances(conversation=conversation))
    events = list(selectors.conversation_events(conversation=conversation))
    rows = turn_latencies(utterances)
    snapshot = conversation.pal_snapshot or {}
    recording = services.recording_path(conversation)
    stats = None
    if rows:
        stats = {label: _median([r.segments[i][2] for r in rows]) for i, (_, label, _) in enumerate(SEGMENTS)}
        stats = {"per_stage": [(label, f"{v:.0f} ms", COLOURS[key]) for (key, label, _), v in
                               zip(SEGMENTS, stats.values())],
                 "total": f"{_median([r.u2u_ms or r.total_ms for r in rows]):.0f} ms"}
    return render(request, "conversations/detail.html", {
        "conversation": conversation,
        "duration": format_duration(duration_of(conversation)),
        "utterances": _with_passages([u for u in utterances if u.role != Utterance.Role.SYSTEM], events, request.user),
        "events": [(e, _short_json(e.properties)) for e in events],
        "rows": rows,
        "chart": latency_chart(rows) if rows else None,
        "stats": stats,
        "pal_name": snapshot.get("pal_name") or (conversation.pal.pal_name if conversation.pal else ""),
        "call_url": selectors.conversation_url(conversation, base_url=base_url(request)),
        "shutdown_text": SHUTDOWN_TEXT.get(conversation.shutdown_reason, conversation.shutdown_reason),
        "has_recording": recording is not None,
        "recording_is_video": recording is not None and services.recording_media_type(recording) == "video/mp4",
        "webhooks": list(webhook_deliveries(account=request.user, subject_id=conversation.pk)),
        "webhook_policy": retry_policy(),
        "objectives": objectives_progress(snapshot, events),
        "guardrail_hits": [e for e in events if e.event_type == GUARDRAIL_TRIGGERED],
    })


def objectives_progress(snapshot: dict, events: list) -> list[dict]:
    """Each objective of the call's PAL in the graph's order, with how far the call got: completed
    (its variables, when), waiting for confirmation, or not reached."""

    data = ((snapshot.get("objectives") or {}).get("data")) or []
    seen: dict[str, tuple[str, object]] = {}
    for e in events:
        if e.event_type in (OBJECTIVE_COMPLETED, OBJECTIVE_PENDING):
            name = e.properties.get("objective_name")
            if seen.get(name, ("",))[0] != "completed":
                seen[name] = ("completed" if e.event_type == OBJECTIVE_COMPLETED else "pending", e)
    rows = []
    for item in data:
        state, event = seen.get(item.get("objective_name"), ("not reached", None))
        rows.append({"name": item.get("objective_name"), "prompt": item.get("objective_prompt", ""), "state": state,
                     "variables": (event.properties.get("output_variables") or {}) if event else {},
                     "at": event.timestamp if event else None})
    return rows


def _with_passages(utterances: list[Utterance], events: list, account) -> list[Utterance]:  # noqa: ANN001
    """Each user turn gets ``passages``: the knowledge-base passages it was answered with
    (``conversation.rag.observability``), each with its document's name."""
    from conversations.realtime.events import RAG_OBSERVABILITY
    from knowledge.selectors import document_list

    found = {e.properties.get("inference_id"): e.properties.get("chunks") or []
             for e in events if e.event_type == RAG_OBSERVABILITY}
    ids = {c.get("document_id") for chunks in found.values() for c in chunks}
    names = dict(document_list(account=account).filter(pk__in=ids).values_list("pk", "document_name")) if ids else {}
    for u in utterances:
        u.passages = [{**c, "document_name": names.get(c.get("document_id"), c.get("document_id"))}
                      for c in found.get(u.inference_id, [])] if u.role == Utterance.Role.USER else []
    return utterances


@login_required
def conversation_recording(request: HttpRequest, conversation_id: str) -> FileResponse:
    """The call's recording, for its owner (the same file the API serves)."""
    conversation = get_object_or_404(selectors.conversation_list(account=request.user), pk=conversation_id)
    path = services.recording_path(conversation)
    if path is None:
        raise Http404("This conversation has no recording")
    return FileResponse(path.open("rb"), content_type=services.recording_media_type(path), filename=path.name)


@login_required
@require_POST
def conversation_end(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = get_object_or_404(selectors.conversation_list(account=request.user), pk=conversation_id)
    services.conversation_end(conversation=conversation)
    messages.success(request, "The conversation has ended.")
    return redirect("web:conversation_detail", conversation_id=conversation.id)


@login_required
@require_POST
def conversation_delete(request: HttpRequest, conversation_id: str) -> HttpResponse:
    conversation = get_object_or_404(selectors.conversation_list(account=request.user), pk=conversation_id)
    services.conversation_delete(conversation=conversation, hard=request.POST.get("hard") == "1")
    messages.success(request, "Deleted the conversation.")
    return redirect("web:conversation_list")
