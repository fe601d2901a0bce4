"""The stock face's row, defined once (``pals.stock`` creates it with the stock PAL; ``faces.services``
builds its assets). Its name is a person's name: lists add "(stock)" themselves."""
from __future__ import annotations

from typing import Any

STOCK_FACE: dict[str, Any] = {"face_name": "Eileen", "source_type": "image"}
