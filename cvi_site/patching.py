"""JSON Patch (RFC 6902) bodies, the one way every PATCH of the API applies them: the body must be a
non-empty array of operations, a patch applies wholly or not at all, and whatever goes wrong is a 400
saying what (never a 500)."""
from __future__ import annotations

from typing import Any

import jsonpatch

from cvi_site.domain import ApplicationError


def check_operations(operations: Any, *, example: str) -> list:
    """The request body as a list of operations, or a 400 showing ``example`` (a JSON Patch array)."""
    if not isinstance(operations, list) or not operations:
        raise ApplicationError(f"the body must be a non-empty JSON Patch array, e.g. {example}")
    return operations


def apply_operations(document: dict[str, Any], operations: list) -> dict[str, Any]:
    """``document`` patched (a copy); a failed ``test`` operation or a bad operation is a 400."""
    try:
        patched = jsonpatch.JsonPatch(operations).apply(document)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise ApplicationError(f"JSON Patch test failed: {exc}") from None
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError, ValueError,
            IndexError, AttributeError) as exc:
        raise ApplicationError(f"invalid JSON Patch: {exc}") from None
    if not isinstance(patched, dict):
        raise ApplicationError("invalid JSON Patch: the document must stay an object")
    return patched
