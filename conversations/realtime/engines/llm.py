"""Language models: the engines, and what they share.

Two engines implement ``LanguageModel``: :class:`~.llama_local.LlamaCppLLM` runs an instruct
GGUF (Qwen2.5) in-process with llama.cpp, one model per process behind a FIFO worker thread,
with prompt-state caching; :class:`~.openai_llm.OpenAILLM` streams chat completions from any
OpenAI-compatible endpoint over HTTP, and its :class:`~.openai_llm.ServiceLLM` flavour talks to
the box's own LLM service (the embedded model, served). Both turn Qwen-style tool-call markup
into ``ToolCall`` deltas with the parser in toolcalls.py. What they share lives here: the
sampling settings of the embedded model, the same whether it runs in-process or in the service.
"""
from __future__ import annotations

from typing import Any

#: how the embedded model samples, in-process or served by the box's LLM service
SAMPLING: dict[str, Any] = {"top_p": 0.8, "top_k": 20, "repeat_penalty": 1.05}
