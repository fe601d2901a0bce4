"""Writes for objective sets. The REST API and the PAL Maker both come through here.

A set is a list of objectives (the hosted ``data`` list) that must form a graph a call can walk:
names unique, every ``next_*`` name an objective of the same set, each objective with at most one
of ``next_required_objectives`` / ``next_conditional_objectives``, no cycles, and at least one start
objective (one that no other objective points to). ``modality: visual`` is refused: the call
evaluates objectives from the transcript only, so nothing would ever see a visual cue complete one.
"""
from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework import serializers

from cvi_site.errors import ApplicationError
from cvi_site.patching import apply_operations, check_operations
from cvi_site.models import Account
from cvi_site.serializers import OutboundURLField, StrictSerializer
from objectives.models import Objective, ObjectiveSet

#: the most objectives in one set, and the most variables / branches of one objective
MAX_OBJECTIVES = 50
MAX_VARIABLES = 50
NO_SPACES = r"^\S+$"
VISUAL_REFUSED = ("visual objectives are not supported: a call evaluates objectives from the transcript only, "
                  "so no visual cue could ever complete one (use verbal)")
#: the hosted set-level status: a stored set is always usable
STATUS_ACTIVE = "active"


class ObjectiveInputSerializer(StrictSerializer):
    """One objective of a set, in the hosted shape."""

    unknown_label = "objective field(s)"
    not_object_message = "each objective must be a JSON object"

    objective_name = serializers.RegexField(NO_SPACES, max_length=100, error_messages={
        "invalid": "must have no spaces (e.g. ask_if_new_patient)"},
        help_text="Unique in the set, no spaces; next_* objectives refer to it.")
    objective_prompt = serializers.CharField(max_length=5000, help_text="What the agent should accomplish.")
    confirmation_mode = serializers.ChoiceField(Objective.ConfirmationMode.choices, default="auto", help_text=(
        "auto: the call decides when the objective is done; manual: the client confirms it "
        "(conversation.objective.pending / conversation.objective.confirm)."))
    output_variables = serializers.ListField(
        child=serializers.RegexField(NO_SPACES, max_length=100, error_messages={"invalid": "must have no spaces"}),
        max_length=MAX_VARIABLES, default=list, help_text="Values to collect; sent with the completion webhook.")
    modality = serializers.ChoiceField(Objective.Modality.choices, default="verbal",
                                       help_text="verbal only: visual objectives are refused (see the error).")
    next_required_objectives = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=MAX_OBJECTIVES, default=list,
        help_text="Objectives that follow once this one is done.")
    next_conditional_objectives = serializers.DictField(
        child=serializers.CharField(max_length=1000), default=dict,
        help_text="{objective name: condition}: the objective whose condition holds follows.")
    callback_url = OutboundURLField(max_length=2000, required=False, allow_blank=True, allow_null=True,
                                    help_text="Receives the completion webhook with the output variables.")

    def rename(self, data: dict) -> dict:
        # the hosted docs also write a single next objective as a string
        if "next_required_objective" in data:
            if data.get("next_required_objectives"):
                raise serializers.ValidationError({"next_required_objective": [
                    "send next_required_objective or next_required_objectives, not both"]})
            data = dict(data)
            single = data.pop("next_required_objective")
            data["next_required_objectives"] = [single] if isinstance(single, str) and single else single or []
        return data

    def validate_modality(self, value: str) -> str:
        if value == Objective.Modality.VISUAL:
            raise serializers.ValidationError(VISUAL_REFUSED)
        return value

    def validate_output_variables(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("each variable may be named once")
        return value

    def validate_next_conditional_objectives(self, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_OBJECTIVES:
            raise serializers.ValidationError(f"at most {MAX_OBJECTIVES} branches")
        return value

    def validate(self, attrs):
        if attrs.get("next_required_objectives") and attrs.get("next_conditional_objectives"):
            raise serializers.ValidationError(
                "an objective has next_required_objectives or next_conditional_objectives, not both")
        attrs["callback_url"] = attrs.get("callback_url") or ""
        return attrs


class ObjectivesInputSerializer(StrictSerializer):
    """``POST /v2/objectives``: ``{"data": [objective, ...]}`` (a bare array is accepted too)."""

    data = serializers.ListField(child=ObjectiveInputSerializer(), min_length=1, max_length=MAX_OBJECTIVES)


def validated_objectives(data: Any) -> list[dict[str, Any]]:
    """The objectives of a request body (``{"data": [...]}`` or ``[...]``), checked one by one and
    as a graph; raises a 400 naming the field (``data.2.next_required_objectives``)."""
    if isinstance(data, list):
        data = {"data": data}
    serializer = ObjectivesInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    items = [dict(item) for item in serializer.validated_data["data"]]
    check_graph(items)
    return items


def _graph_error(index: int, field: str, message: str) -> serializers.ValidationError:
    return serializers.ValidationError({"data": {index: {field: [message]}}})


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
        raise serializers.ValidationError({"data": [
            "no start objective: every objective follows another, so a call would not know where to begin"]})
    cycle = _find_cycle(edges)
    if cycle:
        raise serializers.ValidationError({"data": [
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
def objectives_create(*, account: Account, data: Any) -> ObjectiveSet:
    items = validated_objectives(data)
    objective_set = ObjectiveSet.objects.create(account=account)
    _store(objective_set, items)
    return objective_set


@transaction.atomic
def objectives_replace(*, objective_set: ObjectiveSet, data: Any) -> ObjectiveSet:
    """Replace the whole ``data`` list (the PAL Maker's editor)."""
    items = validated_objectives(data)
    objective_set = ObjectiveSet.objects.select_for_update().get(pk=objective_set.pk)
    _store(objective_set, items)
    return objective_set


#: the fields of one objective: hosted PATCH examples address them at the top (/objective_prompt)
OBJECTIVE_FIELDS = frozenset(ObjectiveInputSerializer().fields) | {"next_required_objective"}
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
def objectives_patch(*, objective_set: ObjectiveSet, operations: Any) -> ObjectiveSet:
    """Apply an RFC 6902 JSON Patch to the set's document atomically (paths like
    ``/data/0/objective_prompt``); the result must be a valid set."""
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
    _store(objective_set, validated_objectives({"data": patched.get("data")}))
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
        raise ApplicationError(f"objectives {objective_set.id} is used by PAL(s) {names}: unlink it from them "
                               "(objectives_id) first", status_code=409)
    objective_set.delete()


def check_objectives_id(*, account: Account | None, objectives_id: str) -> None:
    """A PAL may only link one of its account's objective sets."""
    from objectives.selectors import objective_set_get

    if account is None or objective_set_get(account=account, objectives_id=objectives_id) is None:
        raise ApplicationError(f"objectives_id: no objectives {objectives_id!r}")
