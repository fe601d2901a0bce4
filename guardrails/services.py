"""Writes for guardrails. The REST API and the PAL Maker both come through here.

Two hosted surfaces share the rows: a guardrail created on its own (``guardrail_name`` at the top
of the body) and a legacy set (``{"name", "data": [...]}``, id ``g…``) whose items are guardrails
too, each addressable by its uuid. A PAL links guardrails by ``guardrail_ids`` (uuids) and a set by
``guardrails_id``; deleting anything a PAL links is refused (409) naming the PALs.

Each guardrail's fields are checked at the edge (``guardrails.api.serializers``): the creates take
the validated values; the writes that build the document themselves (a JSON Patch, an editor's
replacement) are handed that check as ``validate``. A broken rule is a ``cvi_site.domain`` error.
"""
from __future__ import annotations

import uuid as uuidlib
from typing import Any

from django.db import transaction

from cvi_site.domain import ApplicationError, ConflictError, InvalidError, Validate
from cvi_site.patching import apply_operations, check_operations
from cvi_site.models import Account
from guardrails.models import Guardrail, GuardrailSet

STATUS_ACTIVE = "active"


def _check_names(items: list[dict[str, Any]]) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        name = item["guardrail_name"]
        if name in seen:
            raise InvalidError({"data": {i: {"guardrail_name": [
                f"{name!r} is already the name of guardrail {seen[name]} of this set"]}}})
        seen[name] = i


# --------------------------------------------------------------------------- representation
def guardrail_item(guardrail: Guardrail) -> dict[str, Any]:
    """A guardrail's own fields (an item of a set's ``data``)."""
    return {
        "guardrail_uuid": str(guardrail.uuid),
        "guardrail_name": guardrail.guardrail_name,
        "guardrail_prompt": guardrail.guardrail_prompt,
        "modality": guardrail.modality,
        "callback_url": guardrail.callback_url or None,
        "tags": list(guardrail.tags),
        "app_message": guardrail.app_message,
    }


def guardrail_representation(guardrail: Guardrail) -> dict[str, Any]:
    """One guardrail as the API shows it (also the document a JSON Patch applies to)."""
    return {**guardrail_item(guardrail), "guardrails_id": guardrail.guardrail_set_id,
            "created_at": guardrail.created_at.isoformat(), "updated_at": guardrail.updated_at.isoformat()}


def guardrail_set_representation(guardrail_set: GuardrailSet) -> dict[str, Any]:
    return {
        "guardrails_id": guardrail_set.id,
        "guardrails_name": guardrail_set.name,
        "status": STATUS_ACTIVE,
        "data": [guardrail_item(g) for g in guardrail_set.guardrails.all()],
        "created_at": guardrail_set.created_at.isoformat(),
        "updated_at": guardrail_set.updated_at.isoformat(),
    }


# --------------------------------------------------------------------------- in use
def pals_linking(*, account_id: int, guardrails_id: str | None = None, uuids: list[str] = ()) -> list:
    """The account's PALs that link the set (guardrails_id) or any of the guardrails (guardrail_ids)."""
    from pals.models import Pal

    wanted = {str(u) for u in uuids}
    return [pal for pal in Pal.objects.filter(account_id=account_id).order_by("created_at")
            if (guardrails_id and pal.guardrails_id == guardrails_id) or wanted & set(pal.guardrail_ids)]


def _refuse_in_use(what: str, pals: list) -> None:
    if pals:
        names = ", ".join(f"{p.id} ({p.pal_name})" if p.pal_name else p.id for p in pals)
        raise ConflictError(f"{what} is used by PAL(s) {names}: unlink it from them (guardrail_ids / "
                            "guardrails_id) first")


# --------------------------------------------------------------------------- writes
def _save_row(row: Guardrail) -> Guardrail:
    row.full_clean(exclude=["account", "guardrail_set"], validate_unique=False, validate_constraints=False)
    row.save()
    return row


@transaction.atomic
def guardrail_create(*, account: Account, data: dict[str, Any]) -> Guardrail:
    """One guardrail of its own, from the validated values (``guardrail_input``) of the hosted
    ``guardrail_name`` body."""
    return _save_row(Guardrail(account=account, **data))


@transaction.atomic
def guardrail_set_create(*, account: Account, data: dict[str, Any]) -> GuardrailSet:
    """A legacy set and its guardrails (each gets a uuid), from the validated values
    (``guardrail_set_input``); names must differ within the set."""
    items = [dict(item) for item in data["data"]]
    _check_names(items)
    guardrail_set = GuardrailSet.objects.create(account=account, name=data.get("name", ""))
    for i, item in enumerate(items):
        _save_row(Guardrail(account=account, guardrail_set=guardrail_set, position=i, **item))
    return guardrail_set


def _apply_patch(document: dict[str, Any], operations: Any, example: str) -> dict[str, Any]:
    return apply_operations(document, check_operations(operations, example=example))


def _read_only(document: dict, patched: dict, keys: tuple[str, ...]) -> None:
    for key in keys:
        if patched.get(key) != document.get(key):
            raise ApplicationError(f"{key} cannot be changed")
        patched.pop(key, None)


@transaction.atomic
def guardrail_patch(*, guardrail: Guardrail, operations: Any, validate: Validate) -> Guardrail:
    """RFC 6902 JSON Patch on one guardrail (paths like ``/guardrail_prompt``), atomically;
    ``validate`` checks the patched guardrail (``guardrail_input``)."""
    guardrail = Guardrail.objects.select_for_update().get(pk=guardrail.pk)
    document = guardrail_representation(guardrail)
    patched = _apply_patch(document, operations, '[{"op": "replace", "path": "/guardrail_prompt", "value": "..."}]')
    _read_only(document, patched, ("guardrail_uuid", "guardrails_id", "created_at", "updated_at"))
    return _update(guardrail, validate(patched))


@transaction.atomic
def guardrail_replace(*, guardrail: Guardrail, data: Any, validate: Validate) -> Guardrail:
    """Replace one guardrail's fields (the PAL Maker's editor; the shown read-only keys may come
    back); ``validate`` checks the rest (``guardrail_input``)."""
    if isinstance(data, dict):
        shown_only = ("guardrail_uuid", "guardrails_id", "created_at", "updated_at")
        data = {k: v for k, v in data.items() if k not in shown_only}
    guardrail = Guardrail.objects.select_for_update().get(pk=guardrail.pk)
    return _update(guardrail, validate(data))


def _update(guardrail: Guardrail, values: dict[str, Any]) -> Guardrail:
    if guardrail.guardrail_set_id and Guardrail.objects.filter(
            guardrail_set_id=guardrail.guardrail_set_id, guardrail_name=values["guardrail_name"]).exclude(
            pk=guardrail.pk).exists():
        raise ApplicationError(f"guardrail_name: {values['guardrail_name']!r} is already a guardrail of set "
                               f"{guardrail.guardrail_set_id}")
    for field, value in values.items():
        setattr(guardrail, field, value)
    return _save_row(guardrail)


@transaction.atomic
def guardrail_set_patch(*, guardrail_set: GuardrailSet, operations: Any, validate: Validate) -> GuardrailSet:
    """RFC 6902 JSON Patch on a set's document (``/guardrails_name``, ``/data/0/guardrail_prompt``).
    An item keeps its uuid while it carries it (edits, moves); an item without one is a new
    guardrail; an item no longer in ``data`` is deleted, unless a PAL links it (409). ``validate``
    checks the patched ``{"name", "data"}`` (``guardrail_set_input``)."""
    guardrail_set = GuardrailSet.objects.select_for_update().get(pk=guardrail_set.pk)
    document = guardrail_set_representation(guardrail_set)
    patched = _apply_patch(document, operations,
                           '[{"op": "replace", "path": "/data/0/guardrail_prompt", "value": "..."}]')
    _read_only(document, patched, ("guardrails_id", "status", "created_at", "updated_at"))
    name = patched.pop("guardrails_name", "")
    unknown = sorted(set(patched) - {"data"})
    if unknown:
        raise ApplicationError(f"unknown field(s) {', '.join(unknown)}")
    items = patched.get("data")
    if not isinstance(items, list):
        raise ApplicationError("data: must be a list of guardrails")
    current = {str(g.uuid): g for g in guardrail_set.guardrails.all()}
    kept: dict[int, str] = {}
    plain = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and "guardrail_uuid" in item:
            item = dict(item)
            item_uuid = str(item.pop("guardrail_uuid"))
            if item_uuid not in current:
                raise ApplicationError(f"data.{i}.guardrail_uuid: {item_uuid!r} is not a guardrail of this set "
                                       "(leave guardrail_uuid out to add a new guardrail)")
            if item_uuid in kept.values():
                raise ApplicationError(f"data.{i}.guardrail_uuid: {item_uuid!r} appears twice")
            kept[i] = item_uuid
        plain.append(item)
    if not plain:
        raise ApplicationError("data: a set keeps at least one guardrail (delete the set instead)")
    values = validate({"name": name, "data": plain})
    items = [dict(item) for item in values["data"]]
    _check_names(items)
    removed = [u for u in current if u not in kept.values()]
    _refuse_in_use(f"guardrail(s) {', '.join(current[u].guardrail_name for u in removed)} of set {guardrail_set.id}",
                   pals_linking(account_id=guardrail_set.account_id, uuids=removed) if removed else [])
    Guardrail.objects.filter(pk__in=removed).delete()
    # names are unique in a set: free them all before writing the new order
    for item_uuid in kept.values():
        row = current[item_uuid]
        row.guardrail_name = f"__renaming_{row.pk.hex}"
        row.save(update_fields=["guardrail_name"])
    for i, item in enumerate(items):
        row = current[kept[i]] if i in kept else Guardrail(account=guardrail_set.account, guardrail_set=guardrail_set)
        for field, value in item.items():
            setattr(row, field, value)
        row.position = i
        _save_row(row)
    guardrail_set.name = values.get("name", "")
    guardrail_set.save()
    return guardrail_set


def guardrail_set_replace(*, guardrail_set: GuardrailSet, name: str, data: Any, validate: Validate) -> GuardrailSet:
    """Replace a set's name and ``data`` (the PAL Maker's editor): items that keep their
    ``guardrail_uuid`` keep their identity, as in a JSON Patch (``validate`` as there)."""
    return guardrail_set_patch(guardrail_set=guardrail_set, validate=validate, operations=[
        {"op": "replace", "path": "/guardrails_name", "value": name},
        {"op": "replace", "path": "/data", "value": data}])


@transaction.atomic
def guardrail_delete(*, guardrail: Guardrail) -> None:
    _refuse_in_use(f"guardrail {guardrail.uuid} ({guardrail.guardrail_name})",
                   pals_linking(account_id=guardrail.account_id, uuids=[str(guardrail.uuid)]))
    guardrail.delete()


@transaction.atomic
def guardrail_set_delete(*, guardrail_set: GuardrailSet) -> None:
    """Delete a set and its guardrails, unless a PAL links the set or one of them (409)."""
    uuids = [str(u) for u in guardrail_set.guardrails.values_list("uuid", flat=True)]
    _refuse_in_use(f"guardrails {guardrail_set.id}", pals_linking(
        account_id=guardrail_set.account_id, guardrails_id=guardrail_set.id, uuids=uuids))
    guardrail_set.delete()


# --------------------------------------------------------------------------- PAL linking
def check_guardrail_ids(*, account: Account | None, guardrail_ids: list[str]) -> list[str]:
    """A PAL may only link its account's guardrails; returns the ids in canonical form."""
    from guardrails.selectors import guardrail_list

    canonical = []
    for value in guardrail_ids:
        try:
            canonical.append(str(uuidlib.UUID(str(value))))
        except ValueError:
            raise ApplicationError(f"guardrail_ids: no guardrail {value!r} (a guardrail's guardrail_uuid)") from None
    if len(set(canonical)) != len(canonical):
        raise ApplicationError("guardrail_ids: a guardrail is named twice")
    known = set()
    if account is not None and canonical:
        found = guardrail_list(account=account).filter(pk__in=canonical).values_list("uuid", flat=True)
        known = {str(u) for u in found}
    missing = [v for v, c in zip(guardrail_ids, canonical) if c not in known]
    if missing:
        raise ApplicationError(f"guardrail_ids: no guardrail {', '.join(repr(m) for m in missing)}")
    return canonical


def check_guardrails_id(*, account: Account | None, guardrails_id: str) -> None:
    from guardrails.selectors import guardrail_set_get

    if account is None or guardrail_set_get(account=account, guardrails_id=guardrails_id) is None:
        raise ApplicationError(f"guardrails_id: no guardrails {guardrails_id!r}")
