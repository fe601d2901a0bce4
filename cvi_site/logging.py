"""One line per event: ``time level logger [conversation_id] message key=value...``.

The conversation id travels in a context variable, so every log line written while a
session (or a task about one conversation) runs carries it without passing it around.
"""
from __future__ import annotations

import contextvars
import json
import logging
import time

conversation_id_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "conversation_id", default=""
)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "conversation_id", ""):
            record.conversation_id = conversation_id_var.get()
        return True


class LineFormatter(logging.Formatter):
    """A single line per record; exceptions folded into the line as JSON strings."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        stamp += f".{int(record.msecs):03d}Z"
        parts = [stamp, record.levelname, record.name]
        cid = getattr(record, "conversation_id", "")
        if cid:
            parts.append(f"conversation_id={cid}")
        parts.append(record.getMessage().replace("\n", "\\n"))
        if record.exc_info:
            parts.append("exc=" + json.dumps(self.formatException(record.exc_info)))
        return " ".join(parts)
