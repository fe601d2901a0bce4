"""A vision model behind any OpenAI-compatible chat-completions endpoint.

Images go in the user message as content parts with base64 JPEG data URLs (the OpenAI
image-input format that vLLM, llama.cpp's server with a multimodal projector, Ollama and
the clouds accept)::

    {"role": "user", "content": [
        {"type": "text", "text": "..."},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,..."}}]}

The HTTP and SSE handling (streaming, errors without secrets, timeouts) is
``engines.openai_llm.OpenAILLM``'s; this class only builds the request and collects the text.
Frames are encoded in memory for the request and never written anywhere.
"""
from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..engines.base import EngineError
from ..engines.openai_llm import OpenAILLM

logger = logging.getLogger(__name__)

#: longest side of an image sent to the model (small vision models work at ~384-768)
MAX_SIDE = 512
JPEG_QUALITY = 75


def encode_jpeg(rgb: np.ndarray, *, max_side: int = MAX_SIDE, quality: int = JPEG_QUALITY) -> bytes:
    """RGB uint8 frame -> JPEG bytes, scaled so its longest side is at most ``max_side``."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR),
                           [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise EngineError("could not encode a camera frame as JPEG", engine="perception", code="bad_frame")
    return buf.tobytes()


def jpeg_base64(rgb: np.ndarray, **kwargs: int) -> str:
    return base64.b64encode(encode_jpeg(rgb, **kwargs)).decode("ascii")


def data_url(jpeg_b64: str) -> str:
    return f"data:image/jpeg;base64,{jpeg_b64}"


class VisionLLM:
    """Ask an OpenAI-compatible vision model about camera frames. One per session."""

    name = "vision-llm"

    def __init__(self, *, base_url: str, model: str = "", api_key: str | None = None,
                 headers: dict[str, str] | None = None, timeout: float = 20.0,
                 max_side: int = MAX_SIDE, jpeg_quality: int = JPEG_QUALITY) -> None:
        self.model = model
        self.max_side = max_side
        self.jpeg_quality = jpeg_quality
        self._llm = OpenAILLM(base_url=base_url, model=model, api_key=api_key, headers=headers,
                              timeout=timeout)
        self.requests = 0
        self.failures = 0

    @property
    def base_url(self) -> str:
        return self._llm.base_url

    async def encode(self, frames: Sequence[np.ndarray]) -> list[str]:
        """Base64 JPEGs of ``frames`` (encoded in a thread)."""
        def work() -> list[str]:
            return [jpeg_base64(f, max_side=self.max_side, quality=self.jpeg_quality) for f in frames]

        return await asyncio.to_thread(work)

    def messages(self, prompt: str, images_b64: Sequence[str], *, system: str = "") -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
        content += [{"type": "image_url", "image_url": {"url": data_url(b)}} for b in images_b64]
        msgs: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        return msgs + [{"role": "user", "content": content}]

    async def ask(self, prompt: str, frames: Sequence[np.ndarray] = (), *, images_b64: Sequence[str] = (),
                  system: str = "", max_tokens: int = 200, temperature: float = 0.0) -> str:
        """The model's whole answer to ``prompt`` about ``frames`` (RGB arrays) and/or
        already-encoded ``images_b64``. Raises ``EngineError``."""
        encoded = list(images_b64) + (await self.encode(frames) if len(frames) else [])
        self.requests += 1
        parts: list[str] = []
        try:
            async for delta in self._llm.stream(self.messages(prompt, encoded, system=system),
                                                max_tokens=max_tokens, temperature=temperature):
                if delta.text:
                    parts.append(delta.text)
        except EngineError as exc:
            self.failures += 1
            raise EngineError(str(exc).replace("LLM endpoint", "vision model endpoint"),
                              engine=self.name, code=exc.code) from None
        return "".join(parts).strip()

    async def aclose(self) -> None:
        await self._llm.aclose()
