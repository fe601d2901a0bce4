"""The stock objects, defined once: the PAL every account can use and the stock face row it
points at (ids in ``cvi_site.ids``). The data migration creates them and ``pal_stock_ensure``
puts them back where a database was emptied; both call :func:`ensure_stock`.

The stock PAL sets only what differs from the layer spec's defaults (``layerspec``), so a
default changed there changes the stock PAL too. The face's render assets are built by
``manage.py setup_opencvi``.
"""
from __future__ import annotations

from typing import Any

from cvi_site.ids import STOCK_FACE_ID, STOCK_PAL_ID
from faces.stock import STOCK_FACE

STOCK_SYSTEM_PROMPT = (
    "You are Eileen, a friendly and helpful assistant talking with a person over a video call. "
    "Answer in one to three short spoken sentences. Be warm and natural. Never use lists, "
    "markdown, emoji or code: everything you write is spoken aloud."
)
STOCK_PAL: dict[str, Any] = {
    "pal_name": "Friendly assistant",
    "system_prompt": STOCK_SYSTEM_PROMPT,
    "greeting": "Hi! I'm Eileen. What would you like to talk about?",
    "pipeline_mode": "full",
    "default_face_id": STOCK_FACE_ID,
    "layers": {"tts": {"voice_id": "en-us+f3"}},
}


def ensure_stock(pal_model: Any, face_model: Any, *, update: bool = False) -> Any:  # noqa: ANN401 - model classes
    """Create the stock face row and PAL if missing (``update``: also reset the PAL to this
    definition). Takes the model classes, so a migration can pass its historical ones."""
    face_model.objects.get_or_create(pk=STOCK_FACE_ID, defaults=dict(STOCK_FACE))
    if update:
        pal, _ = pal_model.objects.update_or_create(pk=STOCK_PAL_ID, defaults=dict(STOCK_PAL))
    else:
        pal, _ = pal_model.objects.get_or_create(pk=STOCK_PAL_ID, defaults=dict(STOCK_PAL))
    return pal
