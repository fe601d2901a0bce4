"""What training raises for input it cannot make a face from."""
from __future__ import annotations


class TrainingError(Exception):
    """Training cannot produce a face from this input: ``code`` is one of the documented error
    codes (shared/API.md, plus ``no_face_detected``), ``message`` says what to do, in words for
    a person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
