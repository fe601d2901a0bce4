"""Reads for guardrails, always scoped to one account."""
from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Prefetch, QuerySet

from guardrails.models import Guardrail, GuardrailSet


def guardrail_list(*, account) -> QuerySet[Guardrail]:  # noqa: ANN001
    """Every guardrail of the account (its own and its sets' items), sets first in their order."""
    return Guardrail.objects.filter(account=account).select_related("guardrail_set").order_by(
        "guardrail_set__created_at", "guardrail_set_id", "position", "created_at")


def guardrail_get(*, account, guardrail_uuid: str) -> Guardrail | None:  # noqa: ANN001
    try:
        key = uuid.UUID(str(guardrail_uuid))
    except ValueError:
        return None
    return guardrail_list(account=account).filter(pk=key).first()


def guardrail_set_list(*, account) -> QuerySet[GuardrailSet]:  # noqa: ANN001
    return (GuardrailSet.objects.filter(account=account)
            .prefetch_related(Prefetch("guardrails", queryset=Guardrail.objects.order_by("position", "created_at")))
            .order_by("-created_at"))


def guardrail_set_get(*, account, guardrails_id: str) -> GuardrailSet | None:  # noqa: ANN001
    return guardrail_set_list(account=account).filter(pk=guardrails_id).first()


def guardrails_snapshot(*, account_id: int | None, guardrail_ids: list[str],
                        guardrails_id: str) -> list[dict[str, Any]]:
    """What a call reads of a PAL's guardrails (the contract with conversations.live): the
    guardrails named by ``guardrail_ids`` (in that order), then the items of the set
    ``guardrails_id``, each once; ``[]`` when none."""
    from guardrails.services import guardrail_item

    if account_id is None:
        return []
    rows: list[Guardrail] = []
    keys = []
    for value in guardrail_ids or []:
        try:
            keys.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    by_uuid = {g.uuid: g for g in Guardrail.objects.filter(account_id=account_id, pk__in=keys)}
    rows += [by_uuid[k] for k in keys if k in by_uuid]
    if guardrails_id:
        rows += list(Guardrail.objects.filter(account_id=account_id, guardrail_set_id=guardrails_id)
                     .order_by("position", "created_at"))
    out, seen = [], set()
    for row in rows:
        if row.uuid in seen:
            continue
        seen.add(row.uuid)
        out.append({**guardrail_item(row), "guardrails_id": row.guardrail_set_id})
    return out
