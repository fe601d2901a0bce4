"""What browsers watching a face see, and the push that tells them when it changes.

``faces.training_job`` calls :func:`face_status_broadcast` whenever training moves (it runs in
the Celery worker). With the Redis channel layer that message reaches the
``FaceStatusConsumer`` in any web process; with the embedded in-memory layer the worker
cannot reach the web process at all, so the consumer also watches the row itself (see
``faces.consumers``).
"""
from __future__ import annotations

import logging
from typing import Any

from faces.models import Face
from faces.paths import face_assets_dir

logger = logging.getLogger(__name__)

#: what a person should do about each training error code (shared/API.md, plus ours)
ERROR_ADVICE = {
    "video_duration": "Record about one minute: half of it talking, half listening quietly.",
    "video_fps": "Record at 25 frames per second or more (most phones do by default).",
    "video_format": "Upload an mp4, webm or mov video, or a jpg, png or webp photo.",
    "video_codec": "Export the video as H.264 mp4 or VP8/VP9 webm.",
    "file_size": "The file is too large. Trim the video to about a minute.",
    "download_link": "The file could not be downloaded. Check that the link is public.",
    "consent_phrase_mismatch": "Start the recording with the consent statement, using your full name.",
    "second_person_detected": "Only one person may be in the frame. Record alone.",
    "face_turned_away": "Look at the camera for the whole recording.",
    "poor_lighting": "Light your face from the front (face a window or a lamp) and avoid strong backlight.",
    "improper_distance": "Come closer: your face should fill at least a quarter of the frame.",
    "excessive_movement_detected": "Keep your head and the camera still; prop the phone up.",
    "no_face_detected": "No face was found. Face the camera in good light.",
    "training_interrupted": "The training stopped unexpectedly. Press Retrain to try again.",
    "training_timeout": "The training took too long. Try a shorter video.",
    "training_failed": "Something went wrong while training. Press Retrain, or try another recording.",
}


def face_group(face_id: str) -> str:
    return f"face.{face_id}"


def face_state(face: Face) -> dict[str, Any]:
    """The face's training state as the progress bar shows it (page render and pushes)."""
    ready = face.status == Face.Status.READY
    has_thumbnail = ready and (face_assets_dir(face) / "thumbnail.jpg").is_file()
    failed = face.status == Face.Status.ERROR
    return {
        "face_id": face.id,
        "status": face.status,
        "progress": int(face.training_progress),
        "error_code": face.error_code if failed else "",
        "error_message": face.error_message if failed else "",
        "advice": ERROR_ADVICE.get(face.error_code, "") if failed else "",
        "thumbnail_url": f"/faces/{face.id}/thumbnail.jpg?v={int(face.updated_at.timestamp())}" if has_thumbnail else "",
    }


def face_status_broadcast(face_id: str) -> None:
    """Push the face's current state to its group (called from sync code: the worker)."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    face = Face.objects.filter(pk=face_id).first()
    if layer is None or face is None:
        return
    try:
        async_to_sync(layer.group_send)(face_group(face_id), {"type": "face.status", "state": face_state(face)})
    except Exception:  # noqa: BLE001 - the row is the truth; watchers also re-read it
        logger.warning("could not push the state of face %s", face_id, exc_info=True)
