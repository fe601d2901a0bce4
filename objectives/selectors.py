"""Reads for objective sets, always scoped to one account."""
from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from objectives.models import Objective, ObjectiveSet


def objective_set_list(*, account) -> QuerySet[ObjectiveSet]:  # noqa: ANN001
    return (ObjectiveSet.objects.filter(account=account)
            .prefetch_related(Prefetch("objectives", queryset=Objective.objects.order_by("position")))
            .order_by("-created_at"))


def objective_set_get(*, account, objectives_id: str) -> ObjectiveSet | None:  # noqa: ANN001
    return objective_set_list(account=account).filter(pk=objectives_id).first()


def objectives_snapshot(*, account_id: int | None, objectives_id: str) -> dict[str, Any] | None:
    """What a call reads of a PAL's objectives (the contract with conversations.live):
    ``{"objectives_id": ..., "data": [objective as the API shows it, ...]}``, or None."""
    from objectives.services import objective_representation

    if not objectives_id or account_id is None:
        return None
    objective_set = objective_set_list(account=account_id).filter(pk=objectives_id).first()
    if objective_set is None:
        return None
    return {"objectives_id": objective_set.id,
            "data": [objective_representation(o) for o in objective_set.objectives.all()]}
