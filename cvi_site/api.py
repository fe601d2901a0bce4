"""Shared pieces of the REST API: account-scoped resources, pagination in the documented list
shape, base URLs."""
from __future__ import annotations

from django.conf import settings
from django.db.models import Model, QuerySet
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from cvi_site.domain import NotFoundError


class AccountScopedViewSet(viewsets.ViewSet):
    """A resource seen through the requesting account. ``get_queryset()`` is what the account may
    read (its own objects, and the stock ones where the resource has them); ``get_owned_queryset()``
    what it may change. ``get_object()`` looks the URL's id up in one of them: any other id is a 404
    saying ``not_found``, whoever owns it, so no response tells one account about another's objects."""

    not_found = "Not found"

    def get_queryset(self) -> QuerySet:
        raise NotImplementedError

    def get_owned_queryset(self) -> QuerySet:
        return self.get_queryset().filter(account=self.request.user)

    def get_object(self, *, owned: bool = False) -> Model:
        queryset = self.get_owned_queryset() if owned else self.get_queryset()
        found = queryset.filter(pk=self.kwargs[self.lookup_field]).first()
        if found is None:
            raise NotFoundError(self.not_found)
        return found


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
