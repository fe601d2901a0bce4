"""Shared error types and the one DRF exception handler that renders the documented bodies.

Bodies (shared/API.md): 401 ``{"message": "Invalid access token"}``; 400 ``{"error": "..."}``;
404 for unknown ids and for other accounts' ids; the concurrency limit's documented
``{"message": ...}`` body; 413 for bodies over the size limit.
"""
from __future__ import annotations

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """A business-rule failure raised by a service; rendered as ``{"error": message}``."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, status_code: int | None = None, body: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        self.body = body

    def as_body(self) -> dict:
        return self.body if self.body is not None else {"error": self.message}


class NotFoundError(ApplicationError):
    status_code = status.HTTP_404_NOT_FOUND


class PayloadTooLargeError(ApplicationError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def _flatten(detail, prefix: str = "") -> list[str]:
    """DRF's nested error detail -> human lines such as ``layers.llm.base_url: must be http(s)``."""
    if isinstance(detail, dict):
        out: list[str] = []
        for key, value in detail.items():
            name = str(key) if key != "non_field_errors" else ""  # a list index 0 is a name too
            out += _flatten(value, f"{prefix}.{name}" if prefix and name else (name or prefix))
        return out
    if isinstance(detail, (list, tuple)):
        out = []
        for item in detail:
            out += _flatten(item, prefix)
        return out
    text = str(detail)
    return [f"{prefix}: {text}" if prefix else text]


def validation_message(detail) -> str:
    return "; ".join(_flatten(detail)) or "Invalid request"


def api_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response(exc.as_body(), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return Response({"error": validation_message(detail)}, status=400)
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return Response({"message": "Invalid access token"}, status=401)
    if isinstance(exc, Http404) or isinstance(exc, exceptions.NotFound):
        return Response({"error": str(exc) if str(exc) and not isinstance(exc, Http404) else "Not found"}, status=404)
    if isinstance(exc, exceptions.ValidationError):
        return Response({"error": validation_message(exc.detail)}, status=400)
    if isinstance(exc, exceptions.ParseError):
        return Response({"error": f"Malformed request body: {exc.detail}"}, status=400)
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return Response({"error": str(exc.detail)}, status=415)
    if isinstance(exc, exceptions.APIException):
        return Response({"error": validation_message(exc.detail)}, status=exc.status_code)
    logger.exception("unhandled API error", exc_info=exc)
    return Response({"error": "Internal server error"}, status=500)
