"""Writes for faces: creation, queueing the training, rename, delete, stock face. The training
itself runs in the worker: ``faces.tasks`` → ``faces.training_job`` (which never imports this
module, so services → tasks → training_job is one-way)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from cvi_site.domain import ApplicationError, NotFoundError
from cvi_site.ids import STOCK_FACE_ID
from cvi_site.models import Account
from faces import tasks
from faces.models import HOSTED_MODEL_NAMES, Face
from faces.paths import face_assets_dir

VIDEO_TYPES = {"video/mp4", "video/webm", "video/quicktime", "application/octet-stream"}
IMAGE_TYPES = {"image/jpeg", "image/png", "image/webp", "application/octet-stream"}
VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".m4v"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


@transaction.atomic
def face_create(
    *,
    account: Account,
    face_name: str = "",
    train_video_url: str = "",
    train_image_url: str = "",
    upload: UploadedFile | None = None,
    callback_url: str = "",
    consent_video_url: str = "",
    model_name: str = "",
    voice_name: str = "",
    warnings: list[str] | None = None,
) -> Face:
    """A new face, queued for training. ``model_name``: one of the hosted API's face models (the
    renderer here is the same for all; ``warnings``, when given, collects that note). ``voice_name``:
    an installed voice that calls with this face use when their PAL names none."""
    sources = [bool(train_video_url), bool(train_image_url), upload is not None]
    if sum(sources) != 1:
        raise ApplicationError("give exactly one of train_video_url, train_image_url or an uploaded file")
    if model_name and model_name not in HOSTED_MODEL_NAMES:
        raise ApplicationError(f"model_name: unknown face model {model_name!r}; "
                               f"accepted: {', '.join(HOSTED_MODEL_NAMES)}")
    if voice_name:
        _check_voice(voice_name)
    face = Face(
        account=account,
        face_name=face_name[:200],
        train_video_url=train_video_url,
        train_image_url=train_image_url,
        callback_url=callback_url,
        consent_video_url=consent_video_url,
        source_type=Face.Source.IMAGE if train_image_url else Face.Source.VIDEO,
        model_name=model_name or HOSTED_MODEL_NAMES[0],
        voice_name=voice_name,
    )
    if upload is not None:
        face.source_type = _check_upload(upload)
        face.source_file.save(f"{face.id}{Path(upload.name or '').suffix.lower() or '.bin'}", upload, save=False)
    face.full_clean()
    face.save()
    face_training_start(face=face)
    if warnings is not None:
        warnings.append(
            f"model_name {face.model_name}: faces here are drawn by OpenCVI's own face renderer, trained the "
            "same way for every model_name; the name is kept and shown, it changes nothing in a call")
    return face


def _check_voice(voice_name: str) -> None:
    from conversations.realtime.frontdoor import voice_catalogue

    voices = [v["voice_id"] for v in voice_catalogue()]
    if voice_name not in voices:
        raise ApplicationError(
            f"voice_name: no voice {voice_name!r} is installed here (the hosted product's stock voice names "
            f"do not exist here); use one of the {len(voices)} voices of GET /v2/voices, e.g. "
            f"{', '.join(voices[:5])}")


def _check_upload(upload: UploadedFile) -> str:
    if upload.size > settings.MAX_UPLOAD_BYTES:
        raise ApplicationError(f"file_size: the file is {upload.size} bytes; the limit is {settings.MAX_UPLOAD_BYTES}")
    suffix = Path(upload.name or "").suffix.lower()
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if suffix in VIDEO_SUFFIXES and content_type in VIDEO_TYPES | {""}:
        return Face.Source.VIDEO
    if suffix in IMAGE_SUFFIXES and content_type in IMAGE_TYPES | {""}:
        return Face.Source.IMAGE
    raise ApplicationError(
        "video_format: upload an mp4/webm/mov video or a jpg/png/webp photo "
        f"(got {upload.name!r}, {content_type or 'no content type'})"
    )


def face_training_start(*, face: Face) -> None:
    """Queue the training job once the face row is committed (the task runs
    ``faces.training_job.face_train``)."""
    Face.objects.filter(pk=face.pk).update(
        status=Face.Status.STARTED, training_progress=0, error_code="", error_message="",
        training_started_at=None, training_finished_at=None,
    )
    transaction.on_commit(lambda: tasks.face_training_start.delay(face.pk))


@transaction.atomic
def face_retrain(*, face: Face) -> Face:
    if face.account_id is None:
        raise NotFoundError("Face not found")
    if face.status in (Face.Status.STARTED, Face.Status.TRAINING):
        raise ApplicationError("the face is already being trained")
    if not (face.source_file or face.train_video_url or face.train_image_url):
        raise ApplicationError("the face has no training source to retrain from")
    face_training_start(face=face)
    face.refresh_from_db()
    return face


@transaction.atomic
def face_rename(*, face: Face, face_name: str) -> Face:
    if face.account_id is None:
        raise NotFoundError("Face not found")
    face.face_name = face_name[:200]
    face.full_clean()
    face.save(update_fields=["face_name", "updated_at"])
    return face


@transaction.atomic
def face_delete(*, face: Face) -> None:
    if face.account_id is None:
        raise NotFoundError("Face not found")
    assets = face_assets_dir(face)
    source = face.source_file.name if face.source_file else ""
    face.delete()

    def cleanup() -> None:
        shutil.rmtree(assets, ignore_errors=True)
        if source:
            Path(settings.MEDIA_ROOT, source).unlink(missing_ok=True)

    transaction.on_commit(cleanup)


# ----------------------------------------------------------------------------- stock face
def face_stock_ensure() -> Iterator[str]:
    """Build the stock face's assets from the public-domain astronaut portrait, once."""
    from faces.stock import STOCK_FACE
    from faces.training import build_stock_face

    face, _ = Face.objects.get_or_create(
        pk=STOCK_FACE_ID,
        defaults={**STOCK_FACE, "status": Face.Status.STARTED},
    )
    from faces.assets import assets_current

    out_dir = face_assets_dir(face)
    if assets_current(out_dir):
        # Built before (or copied from another data dir): nothing to train again.
        if face.status != Face.Status.READY or face.assets_path != str(out_dir):
            Face.objects.filter(pk=face.pk).update(status=Face.Status.READY, training_progress=100,
                                                   assets_path=str(out_dir), error_code="", error_message="")
        yield f"stock face {face.id} ready"
        return
    yield f"building stock face {face.id} from the astronaut portrait…"
    tmp_out = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp_out, ignore_errors=True)
    build_stock_face(tmp_out)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp_out.rename(out_dir)
    Face.objects.filter(pk=face.pk).update(
        status=Face.Status.READY, training_progress=100, assets_path=str(out_dir), error_code="", error_message=""
    )
    yield f"stock face {face.id} ready"
