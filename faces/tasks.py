"""Face training jobs. Thin: load, call the job (``faces.training_job``), which reports progress and
ends the face ``ready`` or ``error``; a worker that dies mid-job is caught by acks-late redelivery
and the sweeper below. ``faces.services`` queues these; this module never imports it."""
from __future__ import annotations

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from faces import training_job


@shared_task(name="faces.face_training_start", acks_late=True, soft_time_limit=1500, time_limit=1560)
def face_training_start(face_id: str) -> str:
    try:
        face = training_job.face_train(face_id=face_id)
    except SoftTimeLimitExceeded:
        training_job.face_training_fail(face_id=face_id, code="training_timeout",
                                        message="training took too long and was stopped")
        return "error"
    return face.status


@shared_task(name="faces.face_fail_stale")
def face_fail_stale(older_than_s: int = 1800) -> int:
    return training_job.face_fail_stale(older_than_s=older_than_s)
