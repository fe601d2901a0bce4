"""Rules on a PAL's stored layers that need no DRF, for the services, the admin and the views:
secrets masked for display and kept when a client sends back the masked value, and the options
only a full pipeline honours.

Validation of layers sent by a client is ``pals.layers`` (DRF serializers); what it returns is
``plain()`` data, the same kind these functions take.
"""
from __future__ import annotations

from typing import Any

from conversations.realtime import layerspec as spec

#: (layer, option) of every secret (write-only, masked on read)
SECRET_FIELDS = tuple((o.layer, o.name) for o in spec.secrets())


def plain(value: Any) -> Any:  # noqa: ANN401
    """A copy of ``value`` with every mapping a plain ``dict`` and every list a plain ``list``
    (DRF's validated data holds its own dict and list types)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _mask(value: Any) -> Any:  # noqa: ANN401
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, str) and value:
        return "****" + value[-4:] if len(value) > 8 else "****"
    return value


def mask_secrets(layers: dict) -> dict:
    """A copy of ``layers`` safe to show: secrets (and each value of a secret map) reduced to
    their last four characters."""
    out = plain(layers)
    for layer, field in SECRET_FIELDS:
        if out.get(layer, {}).get(field):
            out[layer][field] = _mask(out[layer][field])
    return out


def keep_stored_secrets(stored: dict, new: Any) -> None:  # noqa: ANN401
    """In ``new`` (layers sent by a client), a secret that is the masked form of the stored one
    means "keep the stored secret": put it back (for a secret map, value by value)."""
    if not isinstance(new, dict):
        return
    for layer, field in SECRET_FIELDS:
        old_value = (stored.get(layer) or {}).get(field)
        sent = (new.get(layer) or {}).get(field) if isinstance(new.get(layer), dict) else None
        if not old_value or not sent:
            continue
        if isinstance(old_value, dict) and isinstance(sent, dict):
            for key, value in sent.items():
                if key in old_value and value == _mask(old_value[key]):
                    sent[key] = old_value[key]
        elif sent == _mask(old_value):
            new[layer][field] = old_value


def full_mode_problem(layers: Any) -> str:  # noqa: ANN401
    """Why an echo-mode PAL cannot have ``layers`` ("" if it can): the options only a full
    pipeline honours (turns and the LLM), from the layer spec."""
    found = spec.full_only_set(layers or {})
    if not found:
        return ""
    return (f"layers.{found[0].dotted} needs pipeline_mode full: echo mode makes no turns and has no LLM "
            "(leave it out, or use pipeline_mode full)")
