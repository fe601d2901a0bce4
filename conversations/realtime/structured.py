"""A small JSON answer from the call's language model, constrained to a schema.

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


async def complete_json(llm: LanguageModel, messages: Sequence[dict[str, Any]], schema: dict[str, Any], *,
                        max_tokens: int = 160, timeout_s: float = STRUCTURED_TIMEOUT_S) -> dict[str, Any] | None:
    """The model's answer to ``messages`` as a dict of ``schema`` (temperature 0), or None when
    it gave none (timeout, engine error, not JSON). Engine errors are logged, never raised."""
    kwargs: dict[str, Any] = {"max_tokens": max_tokens, "temperature": 0.0}
    if llm.structured_output:
        kwargs["json_schema"] = schema
    parts: list[str] = []
    stream = llm.stream(list(messages), **kwargs)
    try:
        async with asyncio.timeout(timeout_s):
            async for delta in stream:
                if delta.text:
                    parts.append(delta.text)
    except TimeoutError:
        logger.warning("%s gave no structured answer within %.0f s", llm.name, timeout_s)
        return None
    except Exception as exc:  # noqa: BLE001 - a failed check is reported by the caller as "no answer"
        logger.warning("%s failed on a structured question: %s", llm.name, exc)
        return None
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
    text = _FENCE.sub("", "".join(parts).strip())
    try:
        value = json.loads(text)
    except ValueError:
        logger.info("%s answered a structured question with non-JSON: %.200r", llm.name, text)
        return None
    return value if isinstance(value, dict) else None
