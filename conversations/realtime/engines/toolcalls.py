"""Tool calls in a model's streamed text: the parser that keeps them out of the spoken reply.

Qwen2.5's chat template asks for ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``,
and the small models often write the bare JSON object instead. :class:`ToolCallStreamParser`
splits the text a model streams into plain text and ``LLMDelta(tool_call=ToolCall(...))``,
holding back whatever might still become a call so that no markup or JSON ever reaches the
text deltas (and so the TTS). Both LLM engines use it: the in-process llama.cpp one
(llama_local.py) always when tools are offered, the OpenAI-compatible client (openai_llm.py)
for a server that leaves such markup in the text. :func:`parse_tool_call_json` and
:func:`new_tool_call_id` make the ``ToolCall``; :func:`tool_names` lists what a request offers.
"""
from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from .base import LLMDelta, ToolCall

logger = logging.getLogger(__name__)

TOOL_OPEN = "<tool_call>"
TOOL_CLOSE = "</tool_call>"


def new_tool_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


# ---------------------------------------------------------------------------- tool-call parsing
class ToolCallStreamParser:
    """Splits streamed text into plain text and tool calls.

    Two forms are recognised: ``<tool_call>{json}</tool_call>`` (Qwen2.5's chat template
    asks for it) and a bare ``{"name": ..., "arguments": ...}`` object at the start of the
    reply or right after another call, naming one of ``tool_names`` (what the 0.5B model
    actually writes most of the time). Text that might be the start of either form is
    held back until the next piece decides it, so no markup or JSON reaches the text
    deltas (and the TTS). Whitespace around a tool call is dropped.
    """

    def __init__(self, tool_names: Sequence[str] | None = None) -> None:
        self._names = set(tool_names or ())
        self._buf = ""
        self._mode = "start"  # start | text | tag | json
        self._after_call = False

    def feed(self, text: str) -> list[LLMDelta]:
        self._buf += text
        out: list[LLMDelta] = []
        while self._step(out):
            pass
        return out

    def _step(self, out: list[LLMDelta]) -> bool:
        """Consume what can be decided; True when another step may make progress."""
        if self._mode == "start":
            stripped = self._buf.lstrip()
            if not stripped:
                return False
            if stripped[0] == "{" and self._names:
                self._buf, self._mode = stripped, "json"
            else:
                self._mode = "text"
            return True
        if self._mode == "json":
            end = _json_object_end(self._buf)
            if end < 0:
                return False
            raw, rest = self._buf[:end], self._buf[end:]
            call = parse_tool_call_json(raw, quiet=True)
            if call is not None and call.name in self._names:
                out.append(LLMDelta(tool_call=call))
                self._buf, self._mode, self._after_call = rest, "start", True
            else:  # an answer that merely starts with "{": it is text after all
                self._mode = "text"
            return True
        if self._mode == "tag":
            end = self._buf.find(TOOL_CLOSE)
            if end < 0:
                return False
            call = parse_tool_call_json(self._buf[:end])
            if call is not None:
                out.append(LLMDelta(tool_call=call))
            self._buf = self._buf[end + len(TOOL_CLOSE):]
            self._mode, self._after_call = "start", True
            return True
        # text
        start = self._buf.find(TOOL_OPEN)
        if start >= 0:
            before = self._buf[:start]
            if before.strip():
                out.append(LLMDelta(text=self._strip_after_call(before)))
            self._buf = self._buf[start + len(TOOL_OPEN):]
            self._mode = "tag"
            return True
        keep = _partial_suffix(self._buf, TOOL_OPEN)
        ready = self._buf[: len(self._buf) - keep]
        if not ready.strip():
            return False  # whitespace waits: it may turn out to precede a tool call
        self._buf = self._buf[len(self._buf) - keep:]
        ready = self._strip_after_call(ready)
        if ready:
            out.append(LLMDelta(text=ready))
        return False

    def flush(self) -> list[LLMDelta]:
        """End of stream: a call cut short (no closing tag) is kept if its JSON is whole."""
        buf, mode = self._buf, self._mode
        self._buf, self._mode = "", "start"
        if mode in ("tag", "json"):
            call = parse_tool_call_json(buf, quiet=mode == "json")
            if call is not None and (mode == "tag" or call.name in self._names):
                return [LLMDelta(tool_call=call)]
            if mode == "tag":
                return []
        buf = self._strip_after_call(buf)
        return [LLMDelta(text=buf)] if buf.strip() else []

    def _strip_after_call(self, text: str) -> str:
        if self._after_call:
            text = text.lstrip()
            if text:
                self._after_call = False
        return text


def _json_object_end(text: str) -> int:
    """Index just past the JSON object that ``text`` starts with, or -1 if still open."""
    depth = 0
    in_str = escaped = False
    for i, ch in enumerate(text):
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return -1


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


def parse_tool_call_json(raw: str, *, quiet: bool = False) -> ToolCall | None:
    """``{"name": ..., "arguments": {...}}`` -> ToolCall (arguments re-serialised as JSON)."""
    raw = raw.strip()
    try:
        obj = json.loads(raw)
    except ValueError:
        if not quiet:
            logger.warning("dropping a malformed tool call from the model (%d chars)", len(raw))
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not obj["name"]:
        if not quiet:
            logger.warning("dropping a tool call without a function name")
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        arguments = args  # already a JSON string
    else:
        arguments = json.dumps(args if args is not None else {}, ensure_ascii=False)
    return ToolCall(id=new_tool_call_id(), name=obj["name"], arguments=arguments)


def tool_names(tools: Sequence[dict[str, Any]] | None) -> list[str]:
    names = []
    for tool in tools or ():
        fn = tool.get("function", tool)
        if isinstance(fn, dict) and fn.get("name"):
            names.append(str(fn["name"]))
    return names

