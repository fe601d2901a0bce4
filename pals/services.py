"""Writes for PALs. The REST API, the PAL Maker and the admin all come through here.

Each entry point checks its input with ``pals.api.serializers.pal_input`` first: ``pal_create``
takes the validated values; the writes that build the document themselves (a JSON Patch, a form
merged into the stored PAL, a copy) are handed that check as ``validate``. A broken rule is a
``cvi_site.domain`` error.
"""
from __future__ import annotations

import copy
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from cvi_site.domain import ApplicationError, NotFoundError, Validate
from cvi_site.patching import apply_operations, check_operations
from cvi_site.models import Account
from pals.models import Pal
from pals.stored_layers import full_mode_problem, keep_stored_secrets, mask_secrets

# Every editable field, by its current name; legacy names map onto these.
EDITABLE_FIELDS = (
    "pal_name", "system_prompt", "context", "greeting", "pipeline_mode", "default_face_id",
    "document_ids", "document_tags", "objectives_id", "guardrail_ids", "guardrails_id", "layers",
)
LEGACY_NAMES = {"persona_name": "pal_name", "default_replica_id": "default_face_id"}


def normalise_names(data: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ApplicationError("the body must be a JSON object")
    out = {}
    for key, value in data.items():
        new = LEGACY_NAMES.get(key, key)
        if new in out and key != new:
            raise ApplicationError(f"{key} and {new} are the same field; send one of them")
        out[new] = value
    return out


def _resolve_face(account: Account | None, face_id: str | None):
    if not face_id:
        return None
    from faces.selectors import face_get_visible

    face = face_get_visible(account=account, face_id=face_id)
    if face is None:
        raise ApplicationError(f"default_face_id: no face {face_id!r}")
    return face


def _apply(pal: Pal, values: dict[str, Any]) -> Pal:
    for field, value in values.items():
        if field == "default_face_id":
            pal.default_face = _resolve_face(pal.account, value)
        elif field == "document_ids" and value and pal.account is not None:
            from knowledge.services import check_document_ids

            check_document_ids(account=pal.account, document_ids=value)
            pal.document_ids = value
        elif field == "objectives_id":
            if value:
                from objectives.services import check_objectives_id

                check_objectives_id(account=pal.account, objectives_id=value)
            pal.objectives_id = value or ""
        elif field == "guardrail_ids":
            from guardrails.services import check_guardrail_ids

            pal.guardrail_ids = check_guardrail_ids(account=pal.account, guardrail_ids=value) if value else []
        elif field == "guardrails_id":
            if value:
                from guardrails.services import check_guardrails_id

                check_guardrails_id(account=pal.account, guardrails_id=value)
            pal.guardrails_id = value or ""
        else:
            setattr(pal, field, value)
    dictionary_id = ((pal.layers or {}).get("tts") or {}).get("pronunciation_dictionary_id")
    if dictionary_id:
        from pronunciations.services import check_pronunciation_dictionary_id

        check_pronunciation_dictionary_id(account=pal.account, dictionary_id=dictionary_id)
    if pal.pipeline_mode == Pal.PipelineMode.FULL and not pal.system_prompt.strip():
        raise ApplicationError("system_prompt is required in full pipeline mode")
    if pal.pipeline_mode == Pal.PipelineMode.ECHO and full_mode_problem(pal.layers):
        raise ApplicationError(full_mode_problem(pal.layers))
    if pal.pipeline_mode == Pal.PipelineMode.ECHO:
        # objectives steer and are judged by the LLM, guardrails check what it generates: echo has none
        linked = [name for name in ("objectives_id", "guardrail_ids", "guardrails_id") if getattr(pal, name)]
        if linked:
            raise ApplicationError(f"{linked[0]} needs pipeline_mode full: in echo mode the agent only says what "
                                   "the client sends, no LLM steers or is checked (leave it out, or use full)")
    try:
        pal.full_clean()
    except DjangoValidationError as exc:
        raise ApplicationError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
    pal.save()
    return pal


@transaction.atomic
def pal_create(*, account: Account | None, data: dict[str, Any], warnings: list[str] | None = None) -> Pal:
    """A new PAL from validated values (``pal_input``). ``warnings``, when given, collects the IPA
    rules of its pronunciation dictionary that its TTS engine cannot pronounce."""
    pal = Pal(account=account)
    return _pronunciation_warnings(_apply(pal, data), warnings)


def pal_representation(pal: Pal, *, mask: bool = True) -> dict[str, Any]:
    """The PAL as the API shows it (also the document a JSON Patch applies to)."""
    return {
        "pal_id": pal.id,
        "pal_name": pal.pal_name,
        "system_prompt": pal.system_prompt,
        "context": pal.context,
        "greeting": pal.greeting,
        "pipeline_mode": pal.pipeline_mode,
        "default_face_id": pal.default_face_id,
        "document_ids": list(pal.document_ids),
        "document_tags": list(pal.document_tags),
        "objectives_id": pal.objectives_id or None,
        "guardrail_ids": list(pal.guardrail_ids),
        "guardrails_id": pal.guardrails_id or None,
        "layers": mask_secrets(pal.layers) if mask else copy.deepcopy(pal.layers),
        "pal_type": "system" if pal.is_stock else "user",
        "created_at": pal.created_at.isoformat() if pal.created_at else None,
        "updated_at": pal.updated_at.isoformat() if pal.updated_at else None,
    }


def _legacy_path(op: dict) -> dict:
    op = dict(op)
    for key in ("path", "from"):
        path = op.get(key)
        if isinstance(path, str):
            head, _, rest = path.lstrip("/").partition("/")
            if head in LEGACY_NAMES:
                op[key] = "/" + LEGACY_NAMES[head] + ("/" + rest if rest else "")
    return op


@transaction.atomic
def pal_patch(*, pal: Pal, operations: Any, validate: Validate, warnings: list[str] | None = None) -> Pal:
    """Apply an RFC 6902 JSON Patch atomically: any failing operation leaves the PAL unchanged.
    ``validate`` checks the patched document (``pal_input``); ``warnings``, when given, collects
    pronunciation problems as ``pal_create`` does."""
    if pal.is_stock:
        raise NotFoundError("PAL not found")
    check_operations(operations, example='[{"op": "replace", "path": "/pal_name", "value": "Ada"}]')
    pal = Pal.objects.select_for_update().get(pk=pal.pk)
    document = pal_representation(pal, mask=False)
    patched = apply_operations(document, [_legacy_path(op) if isinstance(op, dict) else op for op in operations])
    for read_only in ("pal_id", "pal_type", "created_at", "updated_at"):
        if patched.get(read_only) != document.get(read_only):
            raise ApplicationError(f"{read_only} cannot be changed")
        patched.pop(read_only, None)
    _keep_unchanged_secrets(document["layers"], patched.get("layers"))
    return _pronunciation_warnings(_apply(pal, validate(patched)), warnings)


def _pronunciation_warnings(pal: Pal, warnings: list[str] | None) -> Pal:
    """IPA rules of the PAL's pronunciation dictionary that its TTS engine cannot pronounce."""
    if warnings is not None:
        from pronunciations.selectors import pronunciation_warnings

        warnings += pronunciation_warnings(account_id=pal.account_id, layers=pal.layers)
    return pal


def _keep_unchanged_secrets(old_layers: dict, new_layers: Any) -> None:
    """A client that sends back the masked secret it was shown means "keep the secret"."""
    keep_stored_secrets(old_layers, new_layers)


@transaction.atomic
def pal_update(*, pal: Pal, data: dict[str, Any], validate: Validate) -> Pal:
    """Replace the given fields (a form or admin save); ``validate`` checks the merged document
    (``pal_input``)."""
    if pal.is_stock:
        raise NotFoundError("PAL not found")
    current = pal_representation(pal, mask=False)
    merged = {k: current[k] for k in EDITABLE_FIELDS}
    merged.update(normalise_names(data))
    if isinstance(merged.get("layers"), dict):
        _keep_unchanged_secrets(current["layers"], merged["layers"])
    return _apply(pal, validate(merged))


@transaction.atomic
def pal_duplicate(*, pal: Pal, account: Account, validate: Validate) -> Pal:
    """A copy of ``pal`` owned by ``account`` (a face it cannot see is left out); ``validate``
    checks the copy's document (``pal_input``)."""
    data = {k: v for k, v in pal_representation(pal, mask=False).items() if k in EDITABLE_FIELDS}
    data["pal_name"] = f"{pal.pal_name or pal.id} (copy)"[:200]
    if data.get("default_face_id"):
        from faces.selectors import face_get_visible

        if face_get_visible(account=account, face_id=data["default_face_id"]) is None:
            data["default_face_id"] = None
    return pal_create(account=account, data=validate(data))


@transaction.atomic
def pal_delete(*, pal: Pal) -> None:
    if pal.is_stock:
        raise NotFoundError("PAL not found")
    pal.delete()


@transaction.atomic
def pal_stock_ensure() -> Pal:
    """The stock PAL and the stock face row it uses (``pals.stock``; the data migration creates
    them; this puts them back where a database was emptied, e.g. between transactional tests)."""
    from faces.models import Face
    from pals.stock import ensure_stock

    return ensure_stock(Pal, Face)
