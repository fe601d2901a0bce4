"""Reads for PALs, always scoped to what an account may see (its own + stock PALs)."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from cvi_site.ids import STOCK_PAL_ID
from cvi_site.models import Account
from pals.models import Pal


def pal_list(*, account: Account, pal_type: str | None = None) -> QuerySet[Pal]:
    qs = Pal.objects.select_related("default_face").filter(Q(account=account) | Q(account__isnull=True))
    if pal_type == "system":
        qs = qs.filter(account__isnull=True)
    elif pal_type == "user":
        qs = qs.filter(account=account)
    return qs.order_by("-created_at")


def pal_get_visible(*, account: Account | None, pal_id: str) -> Pal | None:
    if account is None:
        return Pal.objects.filter(pk=pal_id, account__isnull=True).first()
    return pal_list(account=account).filter(pk=pal_id).first()


def pal_get_stock_default() -> Pal | None:
    return Pal.objects.filter(pk=STOCK_PAL_ID).first()
