"""Language model over HTTP: any OpenAI-compatible chat-completions endpoint, ``OpenAILLM``.

Chat completions over HTTP (SSE streaming) with httpx: ``base_url`` (without
``/chat/completions``), ``api_key``, ``model``, ``headers``, ``extra_body``,
``default_query``. Streamed ``tool_calls`` deltas are accumulated into complete
``ToolCall``s; a server that leaves Qwen-style ``<tool_call>`` markup in the text gets
the same parser as the embedded engine (toolcalls.py). Closing the iterator closes the
HTTP stream. Failures become ``EngineError`` with a message that never contains the API
key. ``ServiceLLM`` is the same client pointed at the box's own LLM service (the embedded
model, served by llama.cpp's server or vLLM) with the embedded model's sampling.
"""
from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from .base import EngineError, LanguageModel, LLMDelta, ToolCall
from .llm import SAMPLING
from .toolcalls import ToolCallStreamParser, new_tool_call_id, tool_names

logger = logging.getLogger(__name__)


class OpenAILLM(LanguageModel):
    """Any OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp's server, a cloud).

    Cheap to create: one per session. Call ``aclose()`` when the session ends (it closes
    the connection pool).
    """

    name = "openai"
    structured_output = True

    def __init__(self, *, base_url: str, model: str, api_key: str | None = None,
                 headers: dict[str, str] | None = None, extra_body: dict[str, Any] | None = None,
                 default_query: dict[str, Any] | None = None, timeout: float = 30.0,
                 connect_timeout: float = 5.0) -> None:
        import httpx

        if not base_url:
            raise EngineError("the OpenAI-compatible LLM needs a base_url", engine=self.name, code="bad_config")
        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith("/chat/completions"):
            self.base_url = self.base_url[: -len("/chat/completions")]
        self.model = model
        self._api_key = api_key or ""
        self._headers = {"Accept": "text/event-stream", **(headers or {})}
        if api_key:
            self._headers.setdefault("Authorization", f"Bearer {api_key}")
        self._extra_body = dict(extra_body or {})
        self._query = dict(default_query or {})
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._client: httpx.AsyncClient | None = None
        #: the server's own figures for the last completion, when it sends them (llama.cpp's
        #: ``timings``: prompt tokens evaluated vs taken from its cache)
        self.last_timings: dict[str, Any] = {}
        # where errors say we tried to go: no userinfo, no query string (may hold secrets)
        url = httpx.URL(self.base_url)
        self._where = str(url.copy_with(username=None, password=None, query=None, fragment=None))

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _http(self):  # noqa: ANN202 - httpx.AsyncClient, imported lazily
        """This engine's connection pool (through the site's outbound policy: engines/outbound.py)."""
        if self._client is None:
            from . import outbound

            self._client = outbound.async_client(timeout=self._timeout)
        return self._client

    def _scrub(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "***")
        for value in self._headers.values():
            if len(value) >= 8 and value != "text/event-stream":
                text = text.replace(value, "***")
        return text

    def _error(self, message: str, code: str = "llm_endpoint_error") -> EngineError:
        return EngineError(self._scrub(message), engine=self.name, code=code)

    async def stream(self, messages: Sequence[dict[str, Any]], *,
                     tools: Sequence[dict[str, Any]] | None = None, max_tokens: int = 256,
                     temperature: float = 0.7, json_schema: dict[str, Any] | None = None,
                     ) -> AsyncIterator[LLMDelta]:
        import httpx

        client = self._http()
        body: dict[str, Any] = {"model": self.model, "messages": list(messages), "stream": True,
                                "max_tokens": max_tokens, "temperature": temperature}
        if tools and not json_schema:
            body["tools"] = list(tools)
        body.update(self._extra_body)
        if json_schema:
            # OpenAI's structured outputs; llama.cpp's server turns it into a grammar
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "result", "strict": True, "schema": json_schema}}
        url = f"{self.base_url}/chat/completions"
        parser = ToolCallStreamParser(tool_names(tools)) if tools and not json_schema else None
        pending: dict[int, dict[str, str]] = {}  # streamed tool calls by index

        def finish_tool_calls() -> list[LLMDelta]:
            out = []
            for idx in sorted(pending):
                call = pending[idx]
                if call["name"]:
                    out.append(LLMDelta(tool_call=ToolCall(id=call["id"] or new_tool_call_id(),
                                                           name=call["name"],
                                                           arguments=call["arguments"] or "{}")))
            pending.clear()
            return out

        try:
            async with client.stream("POST", url, json=body, headers=self._headers,
                                           params=self._query or None) as resp:
                if resp.status_code >= 400:
                    detail = _error_detail((await resp.aread()).decode("utf-8", "replace"))
                    raise self._error(f"the LLM endpoint at {self._where} answered HTTP "
                                      f"{resp.status_code}{': ' + detail if detail else ''}",
                                      code="llm_http_error")
                async for line in resp.aiter_lines():
                    if not line.startswith("data:"):
                        continue  # SSE comments, event names, keep-alives
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        logger.warning("ignoring a malformed SSE line from the LLM endpoint")
                        continue
                    if isinstance(chunk.get("timings"), dict):
                        self.last_timings = chunk["timings"]
                    if chunk.get("error"):
                        raise self._error(f"the LLM endpoint at {self._where} reported an error: "
                                          f"{_error_detail(json.dumps(chunk))}")
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        text = delta.get("content")
                        if text:
                            for d in (parser.feed(text) if parser else [LLMDelta(text=text)]):
                                yield d
                        for tc in delta.get("tool_calls") or []:
                            slot = pending.setdefault(int(tc.get("index", len(pending))),
                                                      {"id": "", "name": "", "arguments": ""})
                            if tc.get("id"):
                                slot["id"] = tc["id"]
                            fn = tc.get("function") or {}
                            if fn.get("name"):
                                slot["name"] += fn["name"]
                            if fn.get("arguments"):
                                slot["arguments"] += fn["arguments"]
                        if choice.get("finish_reason"):
                            for d in finish_tool_calls():
                                yield d
        except EngineError:
            raise
        except httpx.TimeoutException as exc:
            raise self._error(f"the LLM endpoint at {self._where} timed out ({type(exc).__name__})",
                              code="llm_timeout") from None
        except httpx.HTTPError as exc:
            raise self._error(f"cannot reach the LLM endpoint at {self._where}: "
                              f"{type(exc).__name__}: {exc}", code="llm_unreachable") from None
        for d in finish_tool_calls():
            yield d
        if parser:
            for d in parser.flush():
                yield d


def _error_detail(body: str, limit: int = 300) -> str:
    """The human part of an error body ({"error": {"message": ...}} or text), shortened."""
    try:
        obj = json.loads(body)
        err = obj.get("error", obj) if isinstance(obj, dict) else obj
        if isinstance(err, dict):
            body = str(err.get("message") or err.get("detail") or err)
        else:
            body = str(err)
    except ValueError:
        pass
    body = " ".join(body.split())
    return body[:limit] + ("…" if len(body) > limit else "")


class ServiceLLM(OpenAILLM):
    """The embedded model served by the box's LLM service (llama.cpp's server; vLLM on a GPU):
    one model for every call and web process, batched, a cached prompt slot per live call.

    The server picks for each request the slot whose cached prompt shares the longest prefix
    with it, so a call keeps returning to its own slot and only its new turn is evaluated.
    ``warm_up`` evaluates the system prompt into a slot while the greeting plays."""

    def __init__(self, *, base_url: str, name: str, timeout: float = 30.0) -> None:
        super().__init__(base_url=base_url, model=name, timeout=timeout,
                         extra_body={"cache_prompt": True, **SAMPLING})
        self.name = name

    async def warm_up(self, messages: Sequence[dict[str, Any]], *,
                      tools: Sequence[dict[str, Any]] | None = None) -> None:
        body: dict[str, Any] = {"model": self.model, "messages": list(messages), "max_tokens": 1,
                                "temperature": 0.0, "stream": False, **self._extra_body}
        if tools:
            body["tools"] = list(tools)
        resp = await self._http().post(f"{self.base_url}/chat/completions", json=body, headers=self._headers)
        if resp.status_code >= 400:
            raise self._error(f"warming up the LLM service at {self._where} failed: HTTP {resp.status_code}")

