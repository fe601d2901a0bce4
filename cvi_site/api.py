"""Shared pieces of the REST API: pagination in the documented list shape, base URLs."""
from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter


def paginate(request, queryset, render) -> Response:
    """``{"data": [...], "total_count": N}`` with ``limit`` (1..100, default 25) and ``page`` (1-based)."""
    try:
        limit = int(request.query_params.get("limit", 25))
        page = int(request.query_params.get("page", 1))
    except ValueError:
        raise ValidationError("limit and page must be integers") from None
    if not 1 <= limit <= 100:
        raise ValidationError("limit must be from 1 to 100")
    if not 1 <= page <= 1_000_000:
        raise ValidationError("page must be from 1 to 1000000")
    total = queryset.count()
    items = queryset[(page - 1) * limit: page * limit]
    return Response({"data": [render(item) for item in items], "total_count": total})


def base_url(request) -> str:
    return settings.PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")


def bool_param(request, name: str) -> bool:
    return str(request.query_params.get(name, "")).lower() in ("1", "true", "yes")


class OptionalSlashRouter(SimpleRouter):
    """``/v2/pals`` and ``/v2/pals/`` both work (clients of the hosted API use either)."""

    def __init__(self) -> None:
        super().__init__(trailing_slash=False)
        self.trailing_slash = "/?"
