"""Short string ids with a type prefix, as the hosted API uses (``p…``, ``r…``, ``c…``)."""
from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(6)


def pal_id() -> str:
    return new_id("p")


def face_id() -> str:
    return new_id("r")


def conversation_id() -> str:
    return new_id("c")


# Stock objects have stable ids so docs, tests and clients can name them.
STOCK_PAL_ID = "pstock000001"
STOCK_FACE_ID = "rstock000001"
