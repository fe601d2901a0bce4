"""Writes for objective sets. The REST API and the PAL Maker both come through here.

A set is a list of objectives (the hosted ``data`` list). Each objective is checked at the edge
(``objectives.api.serializers.objectives_input``: its fields, at most one of
``next_required_objectives`` / ``next_conditional_objectives``, ``modality: visual`` refused);
here the list must form a graph a call can walk: names unique, every ``next_*`` name an objective
of the same set, no cycles, and at least one start objective (one that no other objective points
to). A JSON Patch builds the new list itself, so ``objectives_patch`` is handed the edge's check as
``validate``. A broken rule is a ``cvi_site.domain`` error.
"""
from __future__ import annotations

from typing import Any

from django.db import transaction

from cvi_site.domain import ApplicationError, ConflictError, InvalidError, Validate
from cvi_site.patching import apply_operations, check_operations
from cvi_site.models import Account
from objectives.models import Objective, ObjectiveSet

#: the hosted set-level status: a stored set is always usable
STATUS_ACTIVE = "active"


def _graph_error(index: int, field: str, message: str) -> InvalidError:
    return InvalidError({"data": {index: {field: [message]}}})


def check_graph(items: list[dict[str, Any]]) -> None:
    """Names unique, next_* names in the set, at least one start objective, no cycles."""
    index_of: dict[str, int] = {}
    for i, item in enumerate(items):
        name = item["objective_name"]
        if name in index_of:
            raise _graph_error(i, "objective_name", f"{name!r} is already the name of objective {index_of[name]}")
        index_of[name] = i
    edges: dict[str, list[str]] = {}
    for i, item in enumerate(items):
        for field in ("next_required_objectives", "next_conditional_objectives"):
            for target in item[field]:
                if target not in index_of:
                    raise _graph_error(i, field, f"{target!r} is not an objective of this set")
                if target == item["objective_name"]:
                    raise _graph_error(i, field, f"{target!r} cannot follow itself")
        edges[item["objective_name"]] = successors(item)
    pointed_to = {target for targets in edges.values() for target in targets}
    if all(name in pointed_to for name in index_of):
        raise InvalidError({"data": [
            "no start objective: every objective follows another, so a call would not know where to begin"]})
    cycle = _find_cycle(edges)
    if cycle:
        raise InvalidError({"data": [
            "the objectives form a cycle (" + " → ".join(cycle) + "): a call could never finish them"]})


def successors(item: dict[str, Any]) -> list[str]:
    """The names an objective leads to (required or conditional), in order."""
    return list(item.get("next_required_objectives") or []) + list(item.get("next_conditional_objectives") or {})


def _find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        path.append(node)
        for nxt in edges[node]:
            if colour[nxt] == grey:
                return path[path.index(nxt):] + [nxt]
            if colour[nxt] == white:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        colour[node] = black
        return None

    for node in edges:
        if colour[node] == white:
            found = visit(node)
            if found:
                return found
    return None


# --------------------------------------------------------------------------- representation
def objective_representation(objective: Objective) -> dict[str, Any]:
    return {
        "objective_name": objective.objective_name,
        "objective_prompt": objective.objective_prompt,
        "confirmation_mode": objective.confirmation_mode,
        "output_variables": list(objective.output_variables),
        "modality": objective.modality,
        "next_required_objectives": list(objective.next_required_objectives),
        "next_conditional_objectives": dict(objective.next_conditional_objectives),
        "callback_url": objective.callback_url or None,
    }


def start_objectives(items: list[dict[str, Any]]) -> list[str]:
    """Names of the objectives no other objective leads to (where a call begins)."""
    pointed_to = {target for item in items for target in successors(item)}
    return [item["objective_name"] for item in items if item["objective_name"] not in pointed_to]


def objectives_representation(objective_set: ObjectiveSet) -> dict[str, Any]:
    """The set as the API shows it (also the document a JSON Patch applies to). ``objective_name``
    is the set's name in the hosted create response: here, its start objective(s)."""
    data = [objective_representation(o) for o in objective_set.objectives.all()]
    return {
        "objectives_id": objective_set.id,
        "objective_name": ", ".join(start_objectives(data)),
        "status": STATUS_ACTIVE,
        "data": data,
        "created_at": objective_set.created_at.isoformat(),
        "updated_at": objective_set.updated_at.isoformat(),
    }


# --------------------------------------------------------------------------- writes
def _store(objective_set: ObjectiveSet, items: list[dict[str, Any]]) -> None:
    objective_set.objectives.all().delete()
    rows = [Objective(objective_set=objective_set, position=i, **item) for i, item in enumerate(items)]
    for row in rows:
        row.full_clean(exclude=["objective_set"], validate_unique=False, validate_constraints=False)
    Objective.objects.bulk_create(rows)
    objective_set.save()  # updated_at


@transaction.atomic
def objectives_create(*, account: Account, data: list[dict[str, Any]]) -> ObjectiveSet:
    """A new set of the validated objectives (``objectives_input``), once they form a graph."""
    check_graph(data)
    objective_set = ObjectiveSet.objects.create(account=account)
    _store(objective_set, data)
    return objective_set


@transaction.atomic
def objectives_replace(*, objective_set: ObjectiveSet, data: list[dict[str, Any]]) -> ObjectiveSet:
    """Replace the whole ``data`` list with validated objectives (the PAL Maker's editor)."""
    check_graph(data)
    objective_set = ObjectiveSet.objects.select_for_update().get(pk=objective_set.pk)
    _store(objective_set, data)
    return objective_set


#: the fields of one objective, as the model stores them (and so as the API's serializer names
#: them): hosted PATCH examples address them at the top (/objective_prompt), the single
#: ``next_required_objective`` too
OBJECTIVE_FIELDS = frozenset(
    f.name for f in Objective._meta.concrete_fields if f.name not in ("id", "objective_set", "position")
) | {"next_required_objective"}
READ_ONLY = ("objectives_id", "objective_name", "status", "created_at", "updated_at")


def _hosted_path(op: Any, count: int) -> Any:
    """``/objective_prompt`` means ``/data/0/objective_prompt`` in a set of one objective."""
    if not isinstance(op, dict):
        return op
    op = dict(op)
    for key in ("path", "from"):
        path = op.get(key)
        if not isinstance(path, str) or path.startswith("/data"):
            continue
        head = path.lstrip("/").split("/", 1)[0]
        if head in OBJECTIVE_FIELDS:
            if count != 1:
                raise ApplicationError(f"{key} {path}: this set has {count} objectives; name one as "
                                       f"/data/<index>{path}")
            op[key] = "/data/0" + path
    return op


@transaction.atomic
def objectives_patch(*, objective_set: ObjectiveSet, operations: Any, validate: Validate) -> ObjectiveSet:
    """Apply an RFC 6902 JSON Patch to the set's document atomically (paths like
    ``/data/0/objective_prompt``); the result must be a valid set: ``validate`` checks its
    objectives (``objectives_input``), then the graph is checked."""
    check_operations(operations, example='[{"op": "replace", "path": "/data/0/objective_prompt", "value": "..."}]')
    objective_set = ObjectiveSet.objects.select_for_update().get(pk=objective_set.pk)
    document = objectives_representation(objective_set)
    count = len(document["data"])
    patched = apply_operations(document, [_hosted_path(op, count) for op in operations])
    for key in READ_ONLY:
        if patched.get(key) != document[key]:
            hint = " (it is the start objective's name; rename an objective at /data/<index>/objective_name)" \
                if key == "objective_name" else ""
            raise ApplicationError(f"{key} cannot be changed{hint}")
    unknown = sorted(set(patched) - set(document))
    if unknown:
        raise ApplicationError(f"unknown field(s) {', '.join(unknown)}")
    items = validate({"data": patched.get("data")})
    check_graph(items)
    _store(objective_set, items)
    return objective_set


def pals_using(objective_set: ObjectiveSet) -> list:
    from pals.models import Pal

    return list(Pal.objects.filter(objectives_id=objective_set.id).order_by("created_at"))


@transaction.atomic
def objectives_delete(*, objective_set: ObjectiveSet) -> None:
    """Delete a set no PAL uses; one in use is a 409 naming the PALs (a call would lose its steps)."""
    users = pals_using(objective_set)
    if users:
        names = ", ".join(f"{p.id} ({p.pal_name})" if p.pal_name else p.id for p in users)
        raise ConflictError(f"objectives {objective_set.id} is used by PAL(s) {names}: unlink it from them "
                            "(objectives_id) first")
    objective_set.delete()


def check_objectives_id(*, account: Account | None, objectives_id: str) -> None:
    """A PAL may only link one of its account's objective sets."""
    from objectives.selectors import objective_set_get

    if account is None or objective_set_get(account=account, objectives_id=objectives_id) is None:
        raise ApplicationError(f"objectives_id: no objectives {objectives_id!r}")
