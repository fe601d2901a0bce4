"""The one DRF exception handler: services' domain errors (``cvi_site.domain``) and DRF's own
exceptions rendered as the documented bodies.

Bodies (shared/API.md): 401 ``{"message": "Invalid access token"}``; 400 ``{"error": "..."}``;
404 for unknown ids and for other accounts' ids; 409 when a PAL still links what is deleted;
the concurrency limit's documented ``{"message": ...}`` body. (413 for bodies over the size
limit comes from ``cvi_site.middleware``, before a view runs.)
"""
from __future__ import annotations

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from cvi_site.domain import (ApplicationError, ConflictError, LimitReachedError, NotFoundError,
                             validation_message)

logger = logging.getLogger(__name__)


#: each domain error's status (the first class it is an instance of); the body is {"error": message}
DOMAIN_STATUS = ((NotFoundError, status.HTTP_404_NOT_FOUND), (ConflictError, status.HTTP_409_CONFLICT),
                 (ApplicationError, status.HTTP_400_BAD_REQUEST))


def api_exception_handler(exc, context):
    if isinstance(exc, LimitReachedError):
        return Response({"message": exc.message}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ApplicationError):
        code = next(code for cls, code in DOMAIN_STATUS if isinstance(exc, cls))
        return Response({"error": exc.message}, status=code)
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
