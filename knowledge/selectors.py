"""Reads for the knowledge base, always scoped to one account."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from knowledge.models import Document, Memory


def document_list(*, account) -> QuerySet[Document]:  # noqa: ANN001
    return Document.objects.filter(account=account).order_by("-created_at")


def documents_for(*, account_id: int, document_ids: list[str], document_tags: list[str]) -> QuerySet[Document]:
    """The account's ready documents named by id or carrying one of the tags."""
    if not document_ids and not document_tags:
        return Document.objects.none()
    wanted = Q(pk__in=document_ids)
    for tag in document_tags:
        wanted |= Q(tags__contains=[tag]) if _json_contains_supported() else Q(tags__icontains=f'"{tag}"')
    return Document.objects.filter(wanted, account_id=account_id, status=Document.Status.READY)


def _json_contains_supported() -> bool:
    from django.db import connection

    return connection.features.supports_json_field_contains


def memory_list(*, account, store: str) -> QuerySet[Memory]:  # noqa: ANN001
    return Memory.objects.filter(account=account, store=store).order_by("created_at", "id")
