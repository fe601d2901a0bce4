from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError


def validate_origin(origin: str) -> None:
    """An origin is scheme://host[:port] and nothing else."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise ValidationError(f"{origin!r} is not an origin like https://example.com")
