"""Reads for faces, scoped to what an account may see (its own + stock faces)."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from cvi_site.models import Account
from faces.models import Face


def face_list(*, account: Account, face_type: str | None = None, status: str | None = None) -> QuerySet[Face]:
    qs = Face.objects.filter(Q(account=account) | Q(account__isnull=True))
    if status:
        qs = qs.filter(status=status)
    if face_type == "system":
        qs = qs.filter(account__isnull=True)
    elif face_type == "user":
        qs = qs.filter(account=account)
    return qs.order_by("-created_at")


def face_get_visible(*, account: Account | None, face_id: str) -> Face | None:
    if account is None:
        return Face.objects.filter(pk=face_id, account__isnull=True).first()
    return face_list(account=account).filter(pk=face_id).first()


def face_get_owned(*, account: Account, face_id: str) -> Face | None:
    return Face.objects.filter(pk=face_id, account=account).first()
