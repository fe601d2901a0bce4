"""Faces (legacy name: replicas): what an agent looks like."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from cvi_site.ids import face_id

#: the hosted API's face models a create may name (its default first). Every face here is drawn by
#: OpenCVI's own renderer (faces.renderer), trained the same way whatever is named; the name is kept
#: so responses show what the client asked for, and the create response's ``warnings`` says so.
HOSTED_MODEL_NAMES: tuple[str, ...] = ("phoenix-4", "phoenix-3", "phoenix-2")
#: where the hosted API names a status differently from ours: GET responses give its name, the list
#: filter accepts both (ours stay in ``training_status``)
HOSTED_STATUS_NAMES: dict[str, str] = {"ready": "completed"}


class Face(models.Model):
    class Status(models.TextChoices):
        STARTED = "started"
        TRAINING = "training"
        READY = "ready"
        ERROR = "error"

    class Source(models.TextChoices):
        VIDEO = "video"
        IMAGE = "image"

    id = models.CharField(primary_key=True, max_length=32, default=face_id, editable=False)
    # Empty account: a stock (system) face, visible to every account and read-only for them.
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="faces"
    )
    face_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.STARTED)
    training_progress = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    source_type = models.CharField(max_length=8, choices=Source.choices, default=Source.VIDEO)
    train_video_url = models.URLField(max_length=2000, blank=True)
    train_image_url = models.URLField(max_length=2000, blank=True)
    consent_video_url = models.URLField(max_length=2000, blank=True)
    source_file = models.FileField(upload_to="faces/sources/", blank=True, max_length=500)
    callback_url = models.URLField(max_length=2000, blank=True)
    model_name = models.CharField(max_length=32, default=HOSTED_MODEL_NAMES[0])
    # A voice installed here (GET /v2/voices): conversations with this face speak with it when their
    # PAL names no voice (conversations.services.face_voice_applied).
    voice_name = models.CharField(max_length=200, blank=True)
    # Where the trained render assets live (a folder under the data dir).
    assets_path = models.CharField(max_length=500, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    training_started_at = models.DateTimeField(null=True, blank=True)
    training_finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["account", "status"])]

    def __str__(self) -> str:
        return f"{self.face_name or self.id} ({self.status})"

    @property
    def face_type(self) -> str:
        return "system" if self.account_id is None else "user"
