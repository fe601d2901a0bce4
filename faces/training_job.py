"""The face training job (runs in the Celery worker; ``faces.tasks`` calls :func:`face_train`,
:func:`face_training_fail` and :func:`face_fail_stale`): download the source, train, report
progress to the watching browsers, end the face ``ready`` or ``error``, send the webhook. It
never imports ``faces.services`` or ``faces.tasks`` (they import it, through the task)."""
from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from cvi_site.webhooks import webhook_send
from faces.models import Face
from faces.paths import face_assets_dir

logger = logging.getLogger(__name__)


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

    from cvi_site import netguard

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
        consent = _consent_check(face)
        if face.consent_video_url:
            # a separate consent recording: always checked (whatever FACE_CONSENT_REQUIRED says), and
            # then the training video need not open with the statement
            from faces.training.video import _check_consent

            consent_video = _download(face.consent_video_url, work / "consent.mp4", kind=Face.Source.VIDEO)
            _check_consent(consent_video, *(consent or _consent_transcriber(face)))
            consent = None
        if face.source_type == Face.Source.IMAGE:
            train_from_image(source, tmp_out, progress=progress)
        else:
            train_from_video(source, tmp_out, progress=progress, consent=consent)
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp_out.rename(out_dir)
        Face.objects.filter(pk=face_id).update(
            status=Face.Status.READY, training_progress=100, assets_path=str(out_dir),
            training_finished_at=timezone.now(),
        )
    except TrainingError as exc:
        face_training_fail(face_id=face_id, code=exc.code, message=exc.message)
    except Exception as exc:  # noqa: BLE001 - any crash ends the job with a reason, not "training" forever
        logger.exception("face training %s crashed", face_id)
        face_training_fail(face_id=face_id, code="training_failed",
                           message=f"training failed: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    face.refresh_from_db()
    _notify(face_id)
    _training_webhook(face)
    return face


def face_training_fail(*, face_id: str, code: str, message: str) -> None:
    """End a face's training with an error (the task calls it when the job runs out of time)."""
    Face.objects.filter(pk=face_id).update(
        status=Face.Status.ERROR, error_code=code, error_message=message, training_finished_at=timezone.now()
    )


def _consent_check(face: Face):
    """With FACE_CONSENT_REQUIRED, the video's first seconds must hold the consent statement
    naming the person (the face's name), checked with the embedded speech recogniser."""
    if not settings.FACE_CONSENT_REQUIRED:
        return None
    return _consent_transcriber(face)


def _consent_transcriber(face: Face):
    """``(transcribe, full_name)`` for the consent check: the embedded speech recogniser, and the
    face's name as the person's full name."""
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
        face_training_fail(face_id=face_id, code="training_interrupted",
                           message="training stopped unexpectedly (the worker died); retrain the face")
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
