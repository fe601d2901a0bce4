"""A one-shot answer from the call's language model: plain text, or JSON constrained to a schema.

:func:`complete_text` collects a whole answer with a time limit (the dynamic greeting).

The objectives evaluator and the guardrail check ask the model short questions whose answer must
be machine-read. Free-form text or tool calls are not reliable from a 0.5B model; constraining the
sampler to a JSON schema is (a llama.cpp grammar in process, ``response_format`` for an
OpenAI-compatible server, including the box's llama.cpp service). An engine that cannot constrain
its output is asked anyway and its text parsed; an answer that is not the JSON asked for is None.

Cancellation: cancelling the caller stops the generation at once (the engine's stream is closed).
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from .engines.base import LanguageModel

logger = logging.getLogger(__name__)

#: a check must never hold a call for long; a model queued behind others gets this long
STRUCTURED_TIMEOUT_S = 30.0
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


async def complete_text(llm: LanguageModel, messages: Sequence[dict[str, Any]], *, max_tokens: int,
                        temperature: float, timeout_s: float, json_schema: dict[str, Any] | None = None) -> str:
    """The model's whole answer to ``messages``, collected from its stream (constrained to
    ``json_schema`` when given). Raises TimeoutError after ``timeout_s`` and the engine's errors."""
    kwargs: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
    if json_schema is not None:
        kwargs["json_schema"] = json_schema
    parts: list[str] = []
    stream = llm.stream(list(messages), **kwargs)
    try:
        async with asyncio.timeout(timeout_s):
            async for delta in stream:
                if delta.text:
                    parts.append(delta.text)
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
    return "".join(parts).strip()


async def complete_json(llm: LanguageModel, messages: Sequence[dict[str, Any]], schema: dict[str, Any], *,
                        max_tokens: int = 160, timeout_s: float = STRUCTURED_TIMEOUT_S) -> dict[str, Any] | None:
    """The model's answer to ``messages`` as a dict of ``schema`` (temperature 0), or None when
    it gave none (timeout, engine error, not JSON). Engine errors are logged, never raised."""
    try:
        text = await complete_text(llm, messages, max_tokens=max_tokens, temperature=0.0, timeout_s=timeout_s,
                                   json_schema=schema if llm.structured_output else None)
    except TimeoutError:
        logger.warning("%s gave no structured answer within %.0f s", llm.name, timeout_s)
        return None
    except Exception as exc:  # noqa: BLE001 - a failed check is reported by the caller as "no answer"
        logger.warning("%s failed on a structured question: %s", llm.name, exc)
        return None
    text = _FENCE.sub("", text)
    try:
        value = json.loads(text)
    except ValueError:
        logger.info("%s answered a structured question with non-JSON: %.200r", llm.name, text)
        return None
    return value if isinstance(value, dict) else None
