"""Small factories for the domain models (tests only)."""
from __future__ import annotations

from faces.models import Face
from pals.models import Pal


def make_face(*, account=None, status: str = Face.Status.READY, name: str = "Test face") -> Face:
    return Face.objects.create(account=account, face_name=name, status=status, source_type=Face.Source.IMAGE,
                               training_progress=100 if status == Face.Status.READY else 0)


def make_pal(*, account=None, name: str = "Tester", face: Face | None = None, layers: dict | None = None) -> Pal:
    return Pal.objects.create(account=account, pal_name=name, system_prompt="You are a test assistant.",
                              default_face=face, layers=layers or {})
