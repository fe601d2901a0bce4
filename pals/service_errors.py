"""A service's error as (dotted field path, message) pairs, so that the PAL Maker and the admin
can show each message beside the field it names (``layers.llm.base_url``) rather than as one line.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import ValidationError as DRFValidationError

from pals.editor_fields import BY_PATH

_PREFIXED = re.compile(r"^([a-z_]+(?:\.[a-z_0-9]+)*)(?::| is | must )\s*(.*)$")


def service_error_items(exc: Exception) -> list[tuple[str, str]]:
    """(dotted path, message) pairs from an InvalidError or a DRF ValidationError (field by field),
    a Django ValidationError or an ApplicationError (whose message may start with ``field: ...``)."""
    from cvi_site.domain import ApplicationError, InvalidError

    if isinstance(exc, InvalidError):
        return list(_walk(exc.errors, ""))
    if isinstance(exc, DRFValidationError):
        return list(_walk(exc.detail, ""))
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return [(k, " ".join(v)) for k, v in exc.message_dict.items()]
        return [("", m) for m in exc.messages]
    if isinstance(exc, ApplicationError):
        out = []
        for part in exc.message.split("; "):
            m = _PREFIXED.match(part)
            if m and m.group(1) in BY_PATH:
                rest = part[len(m.group(1)):].lstrip(": ")
                out.append((m.group(1), rest))
            else:
                out.append(("", part))
        return out
    return [("", str(exc))]


def _walk(detail: Any, prefix: str) -> Iterable[tuple[str, str]]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            key = str(key)
            if key == "non_field_errors":
                yield from _walk(value, prefix)
            else:
                yield from _walk(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(detail, (list, tuple)):
        for item in detail:
            yield from _walk(item, prefix)
    else:
        yield prefix, str(detail)
