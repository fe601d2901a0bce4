"""Where a face's files live: one path rule for the services, the training job, the pages and
the live session (it depends on nothing else in faces but the model)."""
from __future__ import annotations

from pathlib import Path

from django.conf import settings

from faces.models import Face


def assets_root() -> Path:
    return Path(settings.DATA_DIR) / "faces"


def face_assets_dir(face: Face) -> Path:
    return assets_root() / face.id
