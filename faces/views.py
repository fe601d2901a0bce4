"""PAL Maker face pages: the gallery, "train a face", a face's page with its live training
progress (pushed over the WebSocket of ``faces.consumers``), and session-authenticated
thumbnails. Every write goes through ``faces.services``."""
from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from cvi_site.domain import ApplicationError
from cvi_site.selectors import webhook_deliveries
from cvi_site.webhooks import retry_policy
from faces import selectors, services
from faces.paths import face_assets_dir
from faces.forms import FaceRenameForm, FaceTrainForm
from faces.models import Face
from faces.realtime import ERROR_ADVICE, face_state

logger = logging.getLogger(__name__)

GUIDELINES = [
    "One continuous take of about one minute: roughly half talking naturally, half listening quietly.",
    "Only you in the frame, looking at the camera, your face filling at least a quarter of the picture.",
    "Even light on your face (face a window or a lamp), a plain background, no strong backlight.",
    "Keep the camera still (prop it up) and your head steady; no hands in front of your face.",
    "25 frames per second or more; mp4 (H.264) or webm; up to {max_mb} MB.",
    "A single sharp, well-lit, front-facing photo also works; it animates the photo itself.",
]


def _viewable_faces(request: HttpRequest):
    """The faces a page may show: the account's and the stock ones; an operator (staff) sees any
    thumbnail, as the admin links to them."""
    return Face.objects.all() if request.user.is_staff else selectors.face_list(account=request.user)


@login_required
def face_gallery(request: HttpRequest) -> HttpResponse:
    faces = list(selectors.face_list(account=request.user))
    own = [f for f in faces if f.account_id is not None]
    stock = [f for f in faces if f.account_id is None]
    return render(request, "faces/gallery.html", {
        "own": [(f, face_state(f)) for f in own],
        "stock": [(f, face_state(f)) for f in stock],
    })


@login_required
@require_http_methods(["GET", "POST"])
def face_train(request: HttpRequest) -> HttpResponse:
    form = FaceTrainForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            face = services.face_create(account=request.user, face_name=form.cleaned_data["face_name"],
                                        upload=form.cleaned_data["file"])
        except ApplicationError as exc:
            form.add_error("file", _upload_error(exc.message))
        else:
            messages.success(request, "Uploaded. Training has started; this page shows its progress.",
                             extra_tags="training-started")
            return redirect("web:face_detail", face_id=face.id)
    max_mb = settings.MAX_UPLOAD_BYTES // (1024 * 1024)
    return render(request, "faces/train.html", {
        "form": form, "guidelines": [g.format(max_mb=max_mb) for g in GUIDELINES], "max_mb": max_mb,
    }, status=400 if request.method == "POST" else 200)


def _upload_error(message: str) -> str:
    """``"video_format: upload an mp4..."`` -> the message plus what to do about it."""
    code, _, text = message.partition(": ")
    if code in ERROR_ADVICE and text:
        return f"{text[0].upper()}{text[1:]}."
    return message


@login_required
def face_detail(request: HttpRequest, face_id: str) -> HttpResponse:
    face = get_object_or_404(_viewable_faces(request), pk=face_id)
    owned = face.account_id == request.user.pk
    from pals.selectors import pal_list

    using = [p for p in pal_list(account=request.user) if p.default_face_id == face.id]
    return render(request, "faces/detail.html", {
        "face": face, "state": face_state(face), "owned": owned,
        "rename_form": FaceRenameForm(initial={"face_name": face.face_name}), "pals": using,
        "has_preview": face.status == Face.Status.READY and (face_assets_dir(face) / "preview.mp4").exists(),
        "webhooks": list(webhook_deliveries(account=request.user, subject_id=face.id)) if owned else [],
        "webhook_policy": retry_policy(),
    })


@login_required
@require_POST
def face_rename(request: HttpRequest, face_id: str) -> HttpResponse:
    face = get_object_or_404(selectors.face_list(account=request.user, face_type="user"), pk=face_id)
    form = FaceRenameForm(request.POST)
    if form.is_valid():
        services.face_rename(face=face, face_name=form.cleaned_data["face_name"])
        messages.success(request, "Renamed.")
    else:
        messages.error(request, "Give the face a name of up to 200 characters.")
    return redirect("web:face_detail", face_id=face.id)


@login_required
@require_POST
def face_retrain(request: HttpRequest, face_id: str) -> HttpResponse:
    face = get_object_or_404(selectors.face_list(account=request.user, face_type="user"), pk=face_id)
    try:
        services.face_retrain(face=face)
    except ApplicationError as exc:
        messages.error(request, exc.message[0].upper() + exc.message[1:])
    else:
        messages.success(request, "Training again from the same recording.")
    return redirect("web:face_detail", face_id=face.id)


@login_required
@require_POST
def face_delete(request: HttpRequest, face_id: str) -> HttpResponse:
    face = get_object_or_404(selectors.face_list(account=request.user, face_type="user"), pk=face_id)
    name = face.face_name or face.id
    services.face_delete(face=face)
    messages.success(request, f"Deleted {name}.")
    return redirect("web:face_gallery")


def _asset(request: HttpRequest, face_id: str, filename: str, content_type: str) -> FileResponse:
    face = get_object_or_404(_viewable_faces(request), pk=face_id)
    path: Path = face_assets_dir(face) / filename
    if face.status != Face.Status.READY or not path.is_file():
        raise Http404("no such asset yet")
    response = FileResponse(open(path, "rb"), content_type=content_type)
    # Private: thumbnails are served only to signed-in accounts that may see the face.
    response["Cache-Control"] = "private, max-age=300"
    return response


@login_required
def face_thumbnail(request: HttpRequest, face_id: str) -> FileResponse:
    return _asset(request, face_id, "thumbnail.jpg", "image/jpeg")


@login_required
def face_preview(request: HttpRequest, face_id: str) -> FileResponse:
    return _asset(request, face_id, "preview.mp4", "video/mp4")
