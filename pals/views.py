"""PAL Maker pages: list, create, edit, duplicate, delete, "talk now", and the editor's two
live helpers ("test connection" streams a short reply; "preview voice" returns a WAV), plus the
perception coverage shown as awareness queries are typed.

Views parse the form, check its values as the API checks a body (``pals.api.serializers``,
``conversations.api.serializers``), call ``pals.services`` / ``conversations.services`` and
render; every rule lives in those checks and services (see ``pals.forms``).
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from rest_framework.exceptions import ValidationError as DRFValidationError

from cvi_site.domain import ApplicationError
from faces.selectors import face_list
from pals import selectors, services
from pals.api.serializers import pal_input
from pals.editor_text import voice_choices
from pals.forms import PalEditorForm, TalkNowForm
from pals.service_errors import service_error_items
from conversations.realtime import frontdoor, layerspec
from conversations.realtime.config import PipelineConfig
from pals.layers import validate_layers
from pals.models import Pal
from pals.stored_layers import keep_stored_secrets

logger = logging.getLogger(__name__)

SERVICE_ERRORS = (DRFValidationError, ApplicationError, DjangoValidationError)
PREVIEW_TEXT = "Hello! This is how I sound. I can speak slower, faster, or in another voice."


def _faces(request: HttpRequest):
    return list(face_list(account=request.user))


def _editor_context(form: PalEditorForm, *, pal: Pal | None, account, read_only: bool = False) -> dict[str, Any]:  # noqa: ANN001
    coverage = perception_coverage(form["pc_perception_model"].value(), form["pc_visual_awareness_queries"].value())
    from knowledge.selectors import document_list

    documents = list(document_list(account=account))
    return {"form": form, "pal": pal, "read_only": read_only, "sections": form.sections(),
            "voices": voice_choices(), "coverage": coverage, "documents": documents,
            "document_tags": sorted({t for d in documents for t in d.tags})}


def perception_coverage(model: str | None, queries: Any) -> dict[str, Any]:
    """What the chosen perception engine can answer of the awareness queries, for the editor.

    ``queries`` is the textarea's text (one per line) or a list. The embedded engine answers
    only what its signals cover (``embedded_coverage``); a vision model answers all of them.
    """
    from conversations.realtime.perception.awareness import embedded_coverage

    if isinstance(queries, str):
        queries = [line.strip() for line in queries.splitlines() if line.strip()]
    queries = [str(q) for q in queries or []]
    engine = layerspec.get("perception", "perception_model").canonical(model or "") or "mediapipe"
    if engine == "off":
        return {"engine": "off", "answerable": [], "unanswerable": queries,
                "note": "Perception is off: the agent sees nothing and no query is answered."}
    if engine == "vision-llm":
        return {"engine": "vision-llm", "answerable": [{"query": q, "signal": "vision model"} for q in queries],
                "unanswerable": [],
                "note": "The vision model at the endpoint below answers every query from recent frames, about once a second."}
    return {"engine": engine, **embedded_coverage(queries)}


@login_required
def pal_list(request: HttpRequest) -> HttpResponse:
    pals = list(selectors.pal_list(account=request.user))
    faces = _faces(request)
    return render(request, "pals/list.html", {
        "own": [p for p in pals if not p.is_stock],
        "stock": [p for p in pals if p.is_stock],
        "talk_form": TalkNowForm(faces=faces),
    })


@login_required
@require_http_methods(["GET", "POST"])
def pal_create(request: HttpRequest) -> HttpResponse:
    faces = _faces(request)
    if request.method == "POST":
        form = PalEditorForm(request.POST, faces=faces, account=request.user)
        if form.is_valid():
            try:
                pal = services.pal_create(account=request.user, data=pal_input(form.to_data()))
            except SERVICE_ERRORS as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, f"Created {pal.pal_name or pal.id}.")
                return redirect("web:pal_edit", pal_id=pal.id)
        return render(request, "pals/editor.html", _editor_context(form, pal=None, account=request.user), status=400)
    initial = {"pipeline_mode": "full", "llm_source": "embedded", "llm_speculative_inference": True}
    form = PalEditorForm(initial=initial, faces=faces, account=request.user)
    return render(request, "pals/editor.html", _editor_context(form, pal=None, account=request.user))


@login_required
@require_http_methods(["GET", "POST"])
def pal_edit(request: HttpRequest, pal_id: str) -> HttpResponse:
    pal = get_object_or_404(selectors.pal_list(account=request.user), pk=pal_id)
    faces = _faces(request)
    if pal.is_stock:
        # Stock PALs are shared and read-only: show them, offer a copy to edit.
        form = PalEditorForm(faces=faces, pal=pal)
        return render(request, "pals/editor.html", _editor_context(form, pal=pal, account=request.user, read_only=True))
    if request.method == "POST":
        form = PalEditorForm(request.POST, faces=faces, pal=pal)
        if form.is_valid():
            try:
                pal = services.pal_update(pal=pal, data=form.to_data(), validate=pal_input)
            except SERVICE_ERRORS as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, "Saved.")
                return redirect("web:pal_edit", pal_id=pal.id)
        return render(request, "pals/editor.html", _editor_context(form, pal=pal, account=request.user), status=400)
    return render(request, "pals/editor.html", _editor_context(PalEditorForm(faces=faces, pal=pal), pal=pal,
                                                                 account=request.user))


@login_required
@require_POST
def pal_duplicate(request: HttpRequest, pal_id: str) -> HttpResponse:
    pal = get_object_or_404(selectors.pal_list(account=request.user), pk=pal_id)
    try:
        copy = services.pal_duplicate(pal=pal, account=request.user, validate=pal_input)
    except SERVICE_ERRORS as exc:
        messages.error(request, _message(exc))
        return redirect("web:pal_list")
    messages.success(request, f"Created {copy.pal_name}. You are editing the copy.")
    return redirect("web:pal_edit", pal_id=copy.id)


@login_required
@require_POST
def pal_delete(request: HttpRequest, pal_id: str) -> HttpResponse:
    pal = get_object_or_404(selectors.pal_list(account=request.user, pal_type="user"), pk=pal_id)
    name = pal.pal_name or pal.id
    services.pal_delete(pal=pal)
    messages.success(request, f"Deleted {name}.")
    return redirect("web:pal_list")


@login_required
@require_http_methods(["GET", "POST"])
def pal_talk(request: HttpRequest, pal_id: str) -> HttpResponse:
    """"Talk now": create a conversation for this PAL and open its page."""
    from conversations.api.serializers import conversation_input
    from conversations.selectors import conversation_url
    from conversations.services import conversation_create
    from cvi_site.api import base_url

    pal = get_object_or_404(selectors.pal_list(account=request.user), pk=pal_id)
    faces = _faces(request)
    form = TalkNowForm(request.POST if request.method == "POST" else None, faces=faces, pal=pal)
    if request.method == "POST" and form.is_valid():
        try:
            conversation = conversation_create(account=request.user, data=conversation_input(form.to_data(pal)),
                                               base_url=base_url(request))
        except SERVICE_ERRORS as exc:
            for path, message in service_error_items(exc):
                field = {"replica_id/face_id": "face_id", "face_id": "face_id",
                         "properties.language": "language"}.get(path.split(":")[0])
                form.add_error(field if field in form.fields else None, message)
        else:
            return redirect(conversation_url(conversation, base_url=base_url(request)))
    status = 400 if request.method == "POST" else 200
    return render(request, "pals/talk.html", {"pal": pal, "form": form}, status=status)


# --------------------------------------------------------------------------- live helpers


def _layer_from_post(request: HttpRequest, layer: str) -> tuple[dict[str, Any], Pal | None]:
    """The editor's current (unsaved) values of one layer, validated by the service's rules."""
    pal = None
    if request.POST.get("pal_id"):
        pal = selectors.pal_get_visible(account=request.user, pal_id=request.POST["pal_id"])
    form = PalEditorForm(request.POST, faces=[], pal=pal)
    # Only this layer matters here: the rest of the form may be half-filled.
    form.is_valid()
    errors = {name: e for name, e in form.errors.items() if name.startswith(layer.replace("perception", "pc"))}
    if errors:
        raise ApplicationError("; ".join(f"{form.fields[n].label}: {' '.join(e)}" for n, e in errors.items()))
    data = form.layer_data(layer)
    # A masked secret sent back means "the stored one" (as in pal_update).
    if pal is not None:
        wrapped = {layer: data}
        keep_stored_secrets(pal.layers, wrapped)
        data = wrapped[layer]
    validated = validate_layers({layer: data}).get(layer, {})
    return validated, pal


def _pipeline_from_post(request: HttpRequest, layer: str) -> PipelineConfig:
    """The editor's current values of one layer, parsed as a live call parses them."""
    validated, _ = _layer_from_post(request, layer)
    try:
        return PipelineConfig.from_layers("", "", {layer: validated},
                                          language=request.POST.get("language") or "english")
    except ValueError as exc:
        raise ApplicationError(str(exc)) from None


def _message(exc: Exception) -> str:
    return "; ".join(f"{p}: {m}" if p else m for p, m in service_error_items(exc))


@login_required
@require_POST
def pal_test_llm(request: HttpRequest) -> HttpResponse:
    """Stream a short reply from the LLM the editor is configured with (text/plain)."""
    try:
        config = _pipeline_from_post(request, "llm")
    except SERVICE_ERRORS as exc:
        return HttpResponse(f"Not tested: {_message(exc)}", status=400, content_type="text/plain; charset=utf-8")
    response = StreamingHttpResponse(_stream_reply(config), content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # a proxy must not hold the stream back
    return response


async def _stream_reply(config: PipelineConfig) -> AsyncIterator[str]:
    try:
        async for text in frontdoor.test_llm(config.llm):
            yield text
    except Exception as exc:  # noqa: BLE001 - shown to the person testing; logged for the operator
        logger.exception("LLM connection test failed")
        yield f"\n✗ {type(exc).__name__}: {exc}"


@login_required
@require_POST
def pal_perception_coverage(request: HttpRequest) -> JsonResponse:
    """Which awareness queries the editor's perception engine can answer (JSON, as you type)."""
    return JsonResponse(perception_coverage(request.POST.get("pc_perception_model"),
                                            request.POST.get("pc_visual_awareness_queries", "")[:20_000]))


@login_required
@require_POST
def pal_preview_voice(request: HttpRequest) -> HttpResponse:
    """A WAV of a sample sentence spoken by the editor's current TTS settings."""
    try:
        config = _pipeline_from_post(request, "tts")
    except SERVICE_ERRORS as exc:
        return JsonResponse({"error": _message(exc)}, status=400)
    text = (request.POST.get("preview_text") or PREVIEW_TEXT)[:300]
    from pronunciations.selectors import pipeline_with_pronunciation

    config = pipeline_with_pronunciation(config, account_id=request.user.pk)  # as a call will say it
    try:
        wav = async_to_sync(frontdoor.preview_voice)(config, text)
    except Exception as exc:  # noqa: BLE001 - EngineError and bad voices end up here, shown beside the button
        logger.info("voice preview failed: %s", exc)
        return JsonResponse({"error": str(exc)}, status=400)
    response = HttpResponse(wav, content_type="audio/wav")
    response["Cache-Control"] = "no-store"
    return response
