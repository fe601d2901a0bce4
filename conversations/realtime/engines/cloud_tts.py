"""Remote TTS engines: an OpenAI-compatible speech endpoint (a GPU TTS server of your own, or
OpenAI), ElevenLabs, Cartesia and Azure Speech.

Each asks its service for raw 16-bit mono PCM and streams it back as it arrives, in chunks of
about 100 ms, so the replica starts talking on the first bytes. These services give no
phoneme timings, so the face's mouth follows the audio's energy (the renderer's fallback).

One object per session (it holds the session's key and an HTTP connection pool); close it
with ``await tts.aclose()``. Every request can be pointed at another ``base_url`` (a proxy, a
region, a self-hosted server with the same API).
"""
from __future__ import annotations

import abc
import html
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import numpy as np

from .. import netguard
from .base import EngineError, TextToSpeech, TTSChunk, VoiceOptions

#: bytes of PCM yielded at a time (100 ms at 24 kHz, 16-bit)
CHUNK_BYTES = 4800
SAMPLE_RATE = 24_000


class HTTPStreamingTTS(TextToSpeech, abc.ABC):
    """POST one phrase, stream raw PCM (s16le, mono, ``sample_rate``) back."""

    name = "cloud-tts"
    default_base_url = ""
    sample_rate = SAMPLE_RATE

    def __init__(self, *, api_key: str = "", voice_id: str = "", model: str = "", base_url: str = "",
                 settings: Mapping[str, Any] | None = None, timeout: float = 20.0) -> None:
        self.api_key = api_key
        self.voice_id = voice_id
        self.model = model
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.settings = dict(settings or {})
        if not self.base_url:
            raise EngineError(f"the {self.name} TTS engine needs a base_url", engine=self.name, code="bad_config")
        self._client = netguard.async_client(timeout=httpx.Timeout(timeout, connect=5.0))

    @abc.abstractmethod
    def request(self, text: str, voice: VoiceOptions) -> dict[str, Any]:
        """The ``httpx`` request arguments (``url``, ``headers``, ``json`` or ``content``, ``params``)."""

    async def synthesize(self, text: str, *, voice: VoiceOptions) -> AsyncIterator[TTSChunk]:
        args = self.request(text, voice)
        pending = b""
        first = True
        try:
            async with self._client.stream("POST", **args) as response:
                if response.status_code >= 400:
                    body = (await response.aread()).decode("utf-8", "replace")
                    raise EngineError(f"{self.name} answered HTTP {response.status_code}: {_short(body)}",
                                      engine=self.name, code="tts_http_error")
                kind = response.headers.get("content-type", "")
                if "json" in kind or "text/" in kind:
                    body = (await response.aread()).decode("utf-8", "replace")
                    raise EngineError(f"{self.name} sent {kind} instead of audio: {_short(body)}",
                                      engine=self.name, code="tts_bad_response")
                async for data in response.aiter_bytes():
                    pending += data
                    while len(pending) >= CHUNK_BYTES:
                        piece, pending = pending[:CHUNK_BYTES], pending[CHUNK_BYTES:]
                        yield TTSChunk(np.frombuffer(piece, "<i2").copy(), self.sample_rate, text=text if first else "")
                        first = False
        except httpx.HTTPError as exc:
            raise EngineError(f"cannot reach the {self.name} TTS at {self.base_url}: {exc}", engine=self.name,
                              code="tts_unreachable") from exc
        pending = pending[: len(pending) // 2 * 2]
        if pending:
            yield TTSChunk(np.frombuffer(pending, "<i2").copy(), self.sample_rate, text=text if first else "")

    async def aclose(self) -> None:
        await self._client.aclose()


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


class OpenAISpeechTTS(HTTPStreamingTTS):
    """``POST {base_url}/audio/speech`` (OpenAI's API, and servers that copy it)."""

    name = "openai-tts"
    default_base_url = "https://api.openai.com/v1"

    def request(self, text: str, voice: VoiceOptions) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {"model": self.model or "tts-1", "input": text, "voice": self.voice_id or voice.voice or "alloy",
                "response_format": "pcm", "speed": voice.speed}
        body.update({k: v for k, v in self.settings.items() if k not in ("speed", "region")})
        return {"url": f"{self.base_url}/audio/speech", "headers": headers, "json": body}


class ElevenLabsTTS(HTTPStreamingTTS):
    """ElevenLabs streaming text-to-speech, raw PCM at 24 kHz."""

    name = "elevenlabs"
    default_base_url = "https://api.elevenlabs.io"

    def request(self, text: str, voice: VoiceOptions) -> dict[str, Any]:
        settings = {k: v for k, v in self.settings.items() if k != "region"}
        settings.setdefault("speed", voice.speed)
        body: dict[str, Any] = {"text": text, "model_id": self.model or "eleven_flash_v2_5", "voice_settings": settings}
        if voice.language:
            body["language_code"] = voice.language
        return {"url": f"{self.base_url}/v1/text-to-speech/{self.voice_id}/stream",
                "params": {"output_format": f"pcm_{self.sample_rate}"},
                "headers": {"xi-api-key": self.api_key}, "json": body}


class CartesiaTTS(HTTPStreamingTTS):
    """Cartesia's ``/tts/bytes``, raw s16le PCM at 24 kHz."""

    name = "cartesia"
    default_base_url = "https://api.cartesia.ai"
    api_version = "2025-04-16"

    def request(self, text: str, voice: VoiceOptions) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model_id": self.model or "sonic-2", "transcript": text,
            "voice": {"mode": "id", "id": self.voice_id},
            "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": self.sample_rate},
            "language": voice.language or "en",
        }
        if voice.speed != 1.0:
            body["speed"] = "slow" if voice.speed < 1.0 else "fast"
        return {"url": f"{self.base_url}/tts/bytes", "json": body,
                "headers": {"X-API-Key": self.api_key, "Cartesia-Version": self.api_version}}


class AzureTTS(HTTPStreamingTTS):
    """Azure AI Speech REST (SSML in, raw 24 kHz PCM out). ``base_url`` or
    ``voice_settings.region`` says where."""

    name = "azure"

    def __init__(self, *, settings: Mapping[str, Any] | None = None, base_url: str = "", **kwargs: Any) -> None:
        region = str((settings or {}).get("region") or "")
        if not base_url and region:
            base_url = f"https://{region}.tts.speech.microsoft.com"
        super().__init__(settings=settings, base_url=base_url, **kwargs)

    def request(self, text: str, voice: VoiceOptions) -> dict[str, Any]:
        lang = voice.language or "en"
        name = self.voice_id or "en-US-AvaMultilingualNeural"
        rate = f"{round((voice.speed - 1.0) * 100):+d}%"
        ssml = (f"<speak version='1.0' xml:lang='{html.escape(lang)}'><voice name='{html.escape(name)}'>"
                f"<prosody rate='{rate}'>{html.escape(text)}</prosody></voice></speak>")
        return {"url": f"{self.base_url}/cognitiveservices/v1", "content": ssml.encode(),
                "headers": {"Ocp-Apim-Subscription-Key": self.api_key, "Content-Type": "application/ssml+xml",
                            "X-Microsoft-OutputFormat": "raw-24khz-16bit-mono-pcm", "User-Agent": "OpenCVI"}}


ENGINES: dict[str, type[HTTPStreamingTTS]] = {
    OpenAISpeechTTS.name: OpenAISpeechTTS,
    ElevenLabsTTS.name: ElevenLabsTTS,
    CartesiaTTS.name: CartesiaTTS,
    AzureTTS.name: AzureTTS,
}
#: what each engine cannot work without (checked when a PAL is saved)
REQUIRES: dict[str, tuple[str, ...]] = {
    "openai-tts": (),
    "elevenlabs": ("api_key", "voice_id"),
    "cartesia": ("api_key", "voice_id"),
    "azure": ("api_key",),
}
DESCRIPTIONS = {
    "openai-tts": "an OpenAI-compatible /audio/speech endpoint (OpenAI, or your own GPU TTS server at base_url)",
    "elevenlabs": "ElevenLabs streaming TTS (api_key, voice_id; tts_model_name default eleven_flash_v2_5)",
    "cartesia": "Cartesia Sonic (api_key, voice_id; tts_model_name default sonic-2)",
    "azure": "Azure AI Speech (api_key, and voice_settings.region or base_url; voice_id a neural voice name)",
}
