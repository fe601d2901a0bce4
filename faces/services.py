"""Writes for faces: creation, training (run by the Celery task), rename, delete, stock face."""
from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from cvi_site.errors import ApplicationError, NotFoundError
from cvi_site.ids import STOCK_FACE_ID
from cvi_site.models import Account
from cvi_site.webhooks import webhook_send
from faces.models import Face

logger = logging.getLogger(__name__)

VIDEO_TYPES = {"video/mp4", "video/webm", "video/quicktime", "application/octet-stream"}
IMAGE_TYPES = {"image/jpeg", "image/png", "image/webp", "application/octet-stream"}
VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".m4v"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def assets_root() -> Path:
    return Path(settings.DATA_DIR) / "faces"


def face_assets_dir(face: Face) -> Path:
    return assets_root() / face.id


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
) -> Face:
    sources = [bool(train_video_url), bool(train_image_url), upload is not None]
    if sum(sources) != 1:
        raise ApplicationError("give exactly one of train_video_url, train_image_url or an uploaded file")
    face = Face(
        account=account,
        face_name=face_name[:200],
        train_video_url=train_video_url,
        train_image_url=train_image_url,
        callback_url=callback_url,
        consent_video_url=consent_video_url,
        source_type=Face.Source.IMAGE if train_image_url else Face.Source.VIDEO,
    )
    if upload is not None:
        face.source_type = _check_upload(upload)
        face.source_file.save(f"{face.id}{Path(upload.name or '').suffix.lower() or '.bin'}", upload, save=False)
    face.full_clean()
    face.save()
    face_training_start(face=face)
    return face


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
    """Queue the training job once the face row is committed."""
    from faces.tasks import face_training_start as task

    Face.objects.filter(pk=face.pk).update(
        status=Face.Status.STARTED, training_progress=0, error_code="", error_message="",
        training_started_at=None, training_finished_at=None,
    )
    transaction.on_commit(lambda: task.delay(face.pk))


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


# ----------------------------------------------------------------------------- training
def _set_progress(face_id: str, value: int) -> None:
    value = max(0, min(100, int(value)))
    Face.objects.filter(pk=face_id, status=Face.Status.TRAINING).update(training_progress=value, updated_at=timezone.now())
    _notify(face_id)


def _notify(face_id: str) -> None:
    """Push the face's state to the browsers watching it (PAL Maker progress bar)."""
    try:
        from faces.realtime import face_status_broadcast
    except ImportError:
        return
    face_status_broadcast(face_id)


def _download(url: str, dest: Path, *, kind: str) -> Path:
    import httpx

    from conversations.realtime import netguard

    limit = settings.MAX_UPLOAD_BYTES
    try:
        with netguard.client(timeout=30, follow_redirects=True) as client, client.stream("GET", url) as response:
            if response.status_code != 200:
                raise _training_error("download_link", f"downloading the {kind} returned HTTP {response.status_code}")
            size = 0
            with open(dest, "wb") as fh:
                for chunk in response.iter_bytes(1 << 16):
                    size += len(chunk)
                    if size > limit:
                        raise _training_error("file_size", f"the {kind} is larger than {limit} bytes")
                    fh.write(chunk)
    except httpx.HTTPError as exc:
        raise _training_error("download_link", f"could not download the {kind}: {exc}") from None
    return dest


def _training_error(code: str, message: str) -> Exception:
    from faces.training import TrainingError

    return TrainingError(code, message)


def face_train(*, face_id: str) -> Face:
    """Run the whole training of one face (called by the Celery task). Never raises for bad
    input: the face ends ``ready`` or ``error`` with a code and a message."""
    from faces.training import TrainingError

    updated = Face.objects.filter(pk=face_id).exclude(status=Face.Status.READY).update(
        status=Face.Status.TRAINING, training_progress=0, training_started_at=timezone.now(),
        error_code="", error_message="",
    )
    face = Face.objects.get(pk=face_id)
    if not updated:
        return face
    _notify(face_id)
    out_dir = face_assets_dir(face)
    work = Path(tempfile.mkdtemp(prefix=f"face-{face_id}-"))
    try:
        from faces.training import train_from_image, train_from_video

        if face.source_file:
            source = Path(face.source_file.path)
        else:
            url = face.train_image_url or face.train_video_url
            source = _download(url, work / ("source" + Path(url.split("?")[0]).suffix[:6]), kind=face.source_type)
        tmp_out = out_dir.with_name(out_dir.name + ".tmp")
        shutil.rmtree(tmp_out, ignore_errors=True)
        progress = lambda n: _set_progress(face_id, n)  # noqa: E731
        if face.source_type == Face.Source.IMAGE:
            train_from_image(source, tmp_out, progress=progress)
        else:
            train_from_video(source, tmp_out, progress=progress, consent=_consent_check(face))
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp_out.rename(out_dir)
        Face.objects.filter(pk=face_id).update(
            status=Face.Status.READY, training_progress=100, assets_path=str(out_dir),
            training_finished_at=timezone.now(),
        )
    except TrainingError as exc:
        _fail(face_id, exc.code, exc.message)
    except Exception as exc:  # noqa: BLE001 - any crash ends the job with a reason, not "training" forever
        logger.exception("face training %s crashed", face_id)
        _fail(face_id, "training_failed", f"training failed: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    face.refresh_from_db()
    _notify(face_id)
    _training_webhook(face)
    return face


def _fail(face_id: str, code: str, message: str) -> None:
    Face.objects.filter(pk=face_id).update(
        status=Face.Status.ERROR, error_code=code, error_message=message, training_finished_at=timezone.now()
    )


def _consent_check(face: Face):
    """With FACE_CONSENT_REQUIRED, the video's first seconds must hold the consent statement
    naming the person (the face's name), checked with the embedded speech recogniser."""
    if not settings.FACE_CONSENT_REQUIRED:
        return None
    if not face.face_name.strip():
        raise _training_error("consent_phrase_mismatch", "give the face the full name of the person who consents")

    def transcribe(audio):
        import asyncio

        from conversations.realtime.engines.registry import get_stt

        return asyncio.run(get_stt().transcribe(audio, language=None)).text

    return transcribe, face.face_name


def face_fail_stale(*, older_than_s: int) -> int:
    """Sweeper: faces stuck in training (a worker died) are marked failed."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_s)
    stale = list(
        Face.objects.filter(status=Face.Status.TRAINING, updated_at__lt=cutoff).values_list("pk", flat=True)
    )
    for face_id in stale:
        _fail(face_id, "training_interrupted", "training stopped unexpectedly (the worker died); retrain the face")
        face = Face.objects.get(pk=face_id)
        _training_webhook(face)
    return len(stale)


def _training_webhook(face: Face) -> None:
    if face.callback_url and face.status in (Face.Status.READY, Face.Status.ERROR):
        webhook_send(
            url=face.callback_url, event_type=f"face.training_{face.status}", subject_id=face.id,
            account_id=face.account_id,
            payload={
                "face_id": face.id,
                "replica_id": face.id,
                "status": face.status,
                "error_message": face.error_message or None,
                "error_code": face.error_code or None,
            },
        )


# ----------------------------------------------------------------------------- stock face
def face_stock_ensure() -> Iterator[str]:
    """Build the stock face's assets from the public-domain astronaut portrait, once."""
    from faces.stock import STOCK_FACE
    from faces.training import build_stock_face

    face, _ = Face.objects.get_or_create(
        pk=STOCK_FACE_ID,
        defaults={**STOCK_FACE, "status": Face.Status.STARTED},
    )
    from faces.training.assets import assets_current

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
