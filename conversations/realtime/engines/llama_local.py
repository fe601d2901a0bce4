"""Language model in-process: an instruct GGUF (Qwen2.5) run by llama.cpp, ``LlamaCppLLM``.

One ``llama_cpp.Llama`` per process, driven by one engine-owned worker thread that takes
jobs from a FIFO queue (the scheduler in front of the model: sessions are served one
generation at a time, in arrival order). Tokens travel to the caller's event loop
through an ``asyncio.Queue``. Cancellation (closing the iterator or cancelling its
task) sets a flag the worker checks between prompt chunks and between generated
tokens, so the model is free again within one token (~25 ms).

Prompt caching: llama.cpp keeps the KV cache of the last prompt, and a new prompt that
starts with the same tokens (same system prompt, same history) only evaluates its new
suffix. When several sessions take turns, a small LRU of saved KV states (by token
prefix) restores a session's prefix instead of re-evaluating it. (llama-cpp-python's
``LlamaRAMCache`` is not used: its ``save_state`` also copies a logits buffer of
n_tokens × 151,936 floats, ~180 MB for a 300-token prompt, that its size accounting
ignores.)

The prompt is rendered with the chat template from the GGUF's metadata (Jinja), which
for Qwen2.5 also renders ``tools``. Qwen2.5 answers a tool call with
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``; the stream parser
(toolcalls.py) turns that into ``LLMDelta(tool_call=ToolCall(...))`` and never lets the
markup reach the text (so it is never spoken).
"""
from __future__ import annotations

import asyncio
import ctypes
import functools
import json
import logging
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .base import EngineError, LanguageModel, LLMDelta
from .llm import SAMPLING
from .toolcalls import ToolCallStreamParser, tool_names

logger = logging.getLogger(__name__)


def _normalise_messages(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-style messages -> what the GGUF's Jinja chat template expects.

    Content must be a string (None / content parts are flattened), and an assistant
    tool call's ``arguments`` must be an object (OpenAI sends a JSON string; the template
    serialises it again with ``tojson``).
    """
    out: list[dict[str, Any]] = []
    for msg in messages:
        m = dict(msg)
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        m["content"] = content or ""
        if m.get("tool_calls"):
            calls = []
            for call in m["tool_calls"]:
                fn = dict(call.get("function", call))
                if isinstance(fn.get("arguments"), str):
                    try:
                        fn["arguments"] = json.loads(fn["arguments"] or "{}")
                    except ValueError:
                        pass
                calls.append({**call, "function": fn})
            m["tool_calls"] = calls
        out.append(m)
    return out


# ---------------------------------------------------------------------------- llama.cpp
@dataclass
class _Job:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    max_tokens: int
    temperature: float
    emit: Callable[[object], None]
    #: evaluate and cache the prompt only (``warm_up``), generate nothing
    warm_only: bool = False
    #: constrain the completion to JSON of this schema (a llama.cpp grammar)
    json_schema: dict[str, Any] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    queued_at: float = field(default_factory=time.perf_counter)


@functools.lru_cache(maxsize=32)
def _compiled_grammar(schema_json: str) -> Any:  # noqa: ANN401 - a llama_cpp.LlamaGrammar
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_json_schema(schema_json, verbose=False)


def _grammar(schema: dict[str, Any]) -> Any:  # noqa: ANN401
    """The llama.cpp grammar of a JSON schema (compiled once per schema). The properties keep
    their order: the model writes them in that order, so what it should think about first goes first."""
    try:
        return _compiled_grammar(json.dumps(schema))
    except Exception as exc:  # noqa: BLE001 - llama.cpp raises ValueError/RuntimeError on a bad schema
        raise EngineError(f"the JSON schema cannot be turned into a grammar: {exc}", code="bad_schema") from exc


class _Done:
    """End-of-stream marker."""


_DONE = _Done()


class _Cancelled(Exception):
    pass


class _StateCache:
    """LRU of llama.cpp context states keyed by the tokens they hold (bytes-bounded)."""

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self._items: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self._size = 0

    def longest_prefix(self, tokens: Sequence[int]) -> tuple[tuple[int, ...], bytes] | None:
        best: tuple[tuple[int, ...], bytes] | None = None
        best_len = 0
        for key, data in self._items.items():
            n = _common_prefix(key, tokens)
            if n > best_len:
                best, best_len = (key, data), n
        if best is not None:
            self._items.move_to_end(best[0])
        return best

    def put(self, tokens: tuple[int, ...], data: bytes) -> None:
        if self.capacity_bytes <= 0 or len(data) > self.capacity_bytes:
            return
        # a state whose tokens extend an older one's supersedes it (same session, next turn)
        for key in [k for k in self._items if len(k) <= len(tokens) and tokens[: len(k)] == k]:
            self._size -= len(self._items.pop(key))
        self._items[tokens] = data
        self._size += len(data)
        while self._size > self.capacity_bytes and self._items:
            _key, old = self._items.popitem(last=False)
            self._size -= len(old)

    def __len__(self) -> int:
        return len(self._items)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n



class LlamaCppLLM(LanguageModel):
    """An instruct GGUF run in-process by llama.cpp; shared by every session of the process."""

    #: prompt tokens evaluated between two checks of the cancel flag
    PREFILL_CHUNK = 64
    #: restoring a saved state pays off only when it saves at least this many tokens
    MIN_RESTORE_GAIN = 32

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, name: str = "qwen2.5-coder-0.5b",
                 n_ctx: int = 4096, n_threads: int = 1, n_threads_batch: int = 0, state_cache_bytes: int = 64 << 20,
                 top_p: float = SAMPLING["top_p"], top_k: int = SAMPLING["top_k"],
                 repeat_penalty: float = SAMPLING["repeat_penalty"]) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.name = name
        if model_path is None:
            from .models import ModelFileError, gguf_path

            try:
                model_path = gguf_path(name)
            except ModelFileError as exc:
                raise EngineError(str(exc), engine=name) from exc
        try:
            self._llm = Llama(str(model_path), n_ctx=n_ctx, n_threads=n_threads,
                              n_threads_batch=n_threads_batch or n_threads, verbose=False)
        except Exception as exc:  # llama.cpp raises ValueError/RuntimeError on bad files
            raise EngineError(f"cannot load the language model {name}: {exc}", engine=name) from exc
        llm = self._llm
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise EngineError(f"{name}: the GGUF has no chat template", engine=name)
        eos, bos = llm.token_eos(), llm.token_bos()
        self._eos_text = llm._model.token_get_text(eos) if eos != -1 else ""
        self._formatter = Jinja2ChatFormatter(
            template=template, eos_token=self._eos_text,
            bos_token=llm._model.token_get_text(bos) if bos != -1 else "")
        self._stop = sorted({s for s in (self._eos_text, "<|im_end|>", "<|endoftext|>", "<end_of_turn>") if s})
        self.n_ctx = n_ctx
        self._sampling = {"top_p": top_p, "top_k": top_k, "repeat_penalty": repeat_penalty}
        self._cache = _StateCache(state_cache_bytes)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._current: _Job | None = None
        self._busy = threading.Event()
        self._worker = threading.Thread(target=self._work, name=f"llm-{name}", daemon=True)
        self._worker.start()

    structured_output = True

    # -- public API
    async def stream(self, messages: Sequence[dict[str, Any]], *,
                     tools: Sequence[dict[str, Any]] | None = None, max_tokens: int = 256,
                     temperature: float = 0.7, json_schema: dict[str, Any] | None = None,
                     ) -> AsyncIterator[LLMDelta]:
        if self._closed:
            raise EngineError(f"{self.name} is closed", engine=self.name)
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[object] = asyncio.Queue()

        def emit(item: object) -> None:
            try:
                loop.call_soon_threadsafe(q.put_nowait, item)
            except RuntimeError:  # the caller's loop is gone; the job is orphaned
                job.cancelled.set()

        job = _Job(messages=_normalise_messages(messages), tools=list(tools) if tools else None,
                   max_tokens=max_tokens, temperature=temperature, emit=emit, json_schema=json_schema)
        self._jobs.put(job)
        try:
            while True:
                item = await q.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            # closing or cancelling the iterator: the worker stops at the next token
            job.cancelled.set()

    async def warm_up(self, messages: Sequence[dict[str, Any]], *,
                      tools: Sequence[dict[str, Any]] | None = None) -> None:
        """Evaluate the prompt of ``messages`` now and keep its state, so a later prompt
        that starts the same way (same system prompt and tools, then the conversation)
        only evaluates what is new. Evaluating a prompt costs ~8 ms per token here (a
        130-token system prompt: ~1 s), so do this at session start, not at the first turn.
        Cancelling the caller cancels the warm-up."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def emit(item: object) -> None:
            if item is _DONE:
                try:
                    loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))
                except RuntimeError:
                    job.cancelled.set()

        job = _Job(messages=_normalise_messages(messages), tools=list(tools) if tools else None,
                   max_tokens=0, temperature=0.0, emit=emit, warm_only=True)
        self._jobs.put(job)
        try:
            await done
        finally:
            job.cancelled.set()

    def render_prompt(self, messages: Sequence[dict[str, Any]],
                      tools: Sequence[dict[str, Any]] | None = None) -> str:
        """The exact prompt text the model sees (for debugging and tests)."""
        return self._formatter(messages=_normalise_messages(messages),
                               tools=list(tools) if tools else None).prompt

    @property
    def busy(self) -> bool:
        """True while the worker is generating (or evaluating a prompt)."""
        return self._busy.is_set()

    def close(self) -> None:
        """Stop the worker thread: the running generation stops at its next token, queued
        ones end empty. The registry calls this at interpreter exit, so llama.cpp is never
        torn down under a running generation."""
        self._closed = True
        current = self._current
        if current is not None:
            current.cancelled.set()
        self._jobs.put(None)
        self._worker.join(timeout=10)
        if not self._worker.is_alive():
            # free llama.cpp now, while its module is intact (at interpreter exit a later
            # garbage collection would run Llama.__del__ against half torn-down globals)
            self._llm.close()

    # -- worker thread
    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                while True:  # closing: end whatever is still queued
                    try:
                        left = self._jobs.get_nowait()
                    except queue.Empty:
                        return
                    if left is not None:
                        left.emit(EngineError(f"{self.name} is shutting down", engine=self.name))
                        left.emit(_DONE)
            if job.cancelled.is_set():
                job.emit(_DONE)
                continue
            self._current = job
            self._busy.set()
            try:
                self._run(job)
            except _Cancelled:
                pass
            except EngineError as exc:
                job.emit(exc)
            except Exception as exc:  # noqa: BLE001 - any llama.cpp failure ends this turn only
                logger.exception("%s generation failed", self.name)
                job.emit(EngineError(f"{self.name} failed: {exc}", engine=self.name))
            finally:
                self._current = None
                self._busy.clear()
                job.emit(_DONE)

    def _tokens(self, job: _Job) -> list[int]:
        """Render and tokenize the prompt, dropping the oldest turns if it does not fit."""
        budget = self.n_ctx - job.max_tokens - 8
        messages = job.messages
        while True:
            prompt = self._formatter(messages=messages, tools=job.tools).prompt
            tokens = self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
            if len(tokens) <= budget:
                return tokens
            # keep the system messages at the start and the last message; drop the oldest turn
            first_turn = next((i for i, m in enumerate(messages) if m.get("role") != "system"), None)
            if first_turn is None or first_turn >= len(messages) - 1:
                raise EngineError(f"the prompt ({len(tokens)} tokens) does not fit the model's "
                                  f"context of {self.n_ctx} tokens", engine=self.name, code="context_length")
            logger.info("%s: prompt of %d tokens is too long; dropping the oldest turn", self.name, len(tokens))
            messages = messages[:first_turn] + messages[first_turn + 1:]

    def _prefill(self, tokens: list[int], cancelled: threading.Event) -> None:
        """Evaluate all but the last prompt token, reusing the KV cache or a saved state,
        in small chunks so a cancel takes effect quickly. The last token is left for
        ``create_completion`` so it samples from fresh logits."""
        import llama_cpp

        llm = self._llm
        target = len(tokens) - 1
        prefix = _common_prefix(llm._input_ids.tolist(), tokens)
        saved = self._cache.longest_prefix(tokens)
        if saved is not None:
            saved_tokens, data = saved
            usable = _common_prefix(saved_tokens, tokens)
            if usable >= prefix + self.MIN_RESTORE_GAIN:
                buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
                if llama_cpp.llama_state_set_data(llm._ctx.ctx, buf, len(data)) == len(data):
                    # the saved state may go on past the common part (another question, the
                    # assistant header of a warm-up): n_tokens = usable makes eval() drop it
                    llm.input_ids[: len(saved_tokens)] = saved_tokens
                    llm.n_tokens = len(saved_tokens)
                    llm._requires_eval = True
                    prefix = usable
        prefix = min(prefix, target)
        llm.n_tokens = prefix  # eval() drops the KV cache beyond n_tokens
        for i in range(prefix, target, self.PREFILL_CHUNK):
            if cancelled.is_set():
                raise _Cancelled
            llm.eval(tokens[i: min(target, i + self.PREFILL_CHUNK)])

    def _save_state(self) -> None:
        import llama_cpp

        llm = self._llm
        if self._cache.capacity_bytes <= 0 or llm.n_tokens < self.MIN_RESTORE_GAIN:
            return
        size = llama_cpp.llama_state_get_size(llm._ctx.ctx)
        buf = (ctypes.c_uint8 * int(size))()
        n = llama_cpp.llama_state_get_data(llm._ctx.ctx, buf, size)
        self._cache.put(tuple(llm._input_ids.tolist()), bytes(buf)[: int(n)])

    def _run(self, job: _Job) -> None:
        tokens = self._tokens(job)
        try:
            self._prefill(tokens, job.cancelled)
            if job.warm_only:
                return
            parser = ToolCallStreamParser(tool_names(job.tools)) if job.tools and not job.json_schema else None
            grammar = _grammar(job.json_schema) if job.json_schema else None
            stream = self._llm.create_completion(
                tokens, max_tokens=job.max_tokens, temperature=job.temperature, stream=True,
                stop=self._stop, grammar=grammar, **self._sampling)
            try:
                for chunk in stream:
                    if job.cancelled.is_set():
                        raise _Cancelled
                    text = chunk["choices"][0].get("text") or ""
                    if not text:
                        continue
                    for delta in (parser.feed(text) if parser else [LLMDelta(text=text)]):
                        job.emit(delta)
            finally:
                stream.close()  # stops generation where it is
            if parser:
                for delta in parser.flush():
                    job.emit(delta)
        finally:
            try:
                self._save_state()
            except Exception:  # noqa: BLE001 - the cache is an optimisation only
                logger.exception("%s: saving the prompt state failed", self.name)

