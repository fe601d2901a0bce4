"""The errors a service raises when a request breaks a rule: plain Python, no HTTP and no DRF.

Services raise these; each entry point shows them its own way. The REST API's one exception
handler (``cvi_site.errors``) gives each class its status and documented body: ``ApplicationError``
400, ``InvalidError`` 400 naming the fields, ``NotFoundError`` 404, ``ConflictError`` 409, each as
``{"error": message}``, and ``LimitReachedError`` the hosted 400 ``{"message": ...}``. The PAL Maker
pages, the admin and the management commands show ``message`` (or ``InvalidError.errors`` field by
field).

A service that builds the document it stores (a JSON Patch applied to the stored object, a form
merged into it) is handed the edge's check of that document as a ``Validate`` function, so the
input rules stay written once, in the app's API serializers.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: the edge's check of a whole input document: the validated values, or ``InvalidError``
Validate = Callable[[Any], Any]


class ApplicationError(Exception):
    """A business-rule failure; ``message`` says what, for a person to read."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(ApplicationError):
    """The id names nothing the caller may see (whoever owns it, so no answer tells one account
    about another's objects)."""


class ConflictError(ApplicationError):
    """The change would break what depends on the object (e.g. a PAL still links it)."""


class LimitReachedError(ApplicationError):
    """The account already holds as many live conversations as it may."""


class InvalidError(ApplicationError):
    """Input that fails validation. ``errors`` names the fields: a dict of field → message(s),
    nested for nested fields and list items (``{"data": {2: {"objective_name": ["..."]}}}``), with
    messages about the input as a whole in a list or under ``non_field_errors``. ``message`` is
    all of it on one line (``data.2.objective_name: ...``)."""

    def __init__(self, errors: Any) -> None:
        self.errors = errors
        super().__init__(validation_message(errors))


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    """Nested error detail -> human lines such as ``layers.llm.base_url: must be http(s)``."""
    if isinstance(detail, dict):
        out: list[str] = []
        for key, value in detail.items():
            name = str(key) if key != "non_field_errors" else ""  # a list index 0 is a name too
            out += _flatten(value, f"{prefix}.{name}" if prefix and name else (name or prefix))
        return out
    if isinstance(detail, (list, tuple)):
        out = []
        for item in detail:
            out += _flatten(item, prefix)
        return out
    text = str(detail)
    return [f"{prefix}: {text}" if prefix else text]


def validation_message(detail: Any) -> str:
    """Field errors (``InvalidError.errors``, or DRF's detail of the same shape) on one line."""
    return "; ".join(_flatten(detail)) or "Invalid request"
