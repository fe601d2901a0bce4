"""Remote TTS engines: an OpenAI-compatible speech endpoint (a GPU TTS server of your own, or
OpenAI), ElevenLabs, Cartesia and Azure Speech (``azure_speech``, through Microsoft's SDK).

Each asks its service for 16-bit mono PCM and streams it back as it arrives, so the replica
starts talking on the first bytes. Where the service times its speech, the timings come with
the audio and move the face's mouth (``timings``): ElevenLabs sends character times, Cartesia
word and IPA phoneme times, Azure visemes and word boundaries. The OpenAI-compatible endpoint
sends none: its audio goes on in 100 ms pieces and the mouth follows the audio's energy (the
renderer's fallback).

One object per session (it holds the session's key and an HTTP connection pool); close it
with ``await tts.aclose()``. Every request can be pointed at another ``base_url`` (a proxy, a
region, a self-hosted server with the same API).
"""
from __future__ import annotations

import abc
import base64
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from ..emotion import NEUTRAL, lookup
from . import outbound
from .azure_speech import AzureTTS
from .base import EngineError, PhonemeTiming, TextToSpeech, TTSChunk, VoiceOptions
from .timings import TimedChunker, ipa_mnemonic, letter_phonemes, locate_words, words_from_characters

SAMPLE_RATE = 24_000


class HTTPStreamingTTS(TextToSpeech, abc.ABC):
    """POST one phrase, stream the audio (s16le, mono, ``sample_rate``) back; engines whose
    service sends timings with it override :meth:`read`."""

    name = "cloud-tts"
    default_base_url = ""
    sample_rate = SAMPLE_RATE
    #: audio with no timings yet is handed on after this much (0: at once, in 100 ms pieces)
    untimed_after_ms = 0.0

    def __init__(self, *, api_key: str = "", voice_id: str = "", model: str = "", base_url: str = "",
                 settings: Mapping[str, Any] | None = None, timeout: float = 20.0) -> None:
        self.api_key = api_key
        self.voice_id = voice_id
        self.model = model
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.settings = dict(settings or {})
        if not self.base_url:
            raise EngineError(f"the {self.name} TTS engine needs a base_url", engine=self.name, code="bad_config")
        self._client = outbound.async_client(timeout=httpx.Timeout(timeout, connect=5.0))

    @abc.abstractmethod
    def request(self, text: str, voice: VoiceOptions) -> dict[str, Any]:
        """The ``httpx`` request arguments (``url``, ``headers``, ``json`` or ``content``, ``params``)."""

    async def read(self, response: httpx.Response, chunker: TimedChunker) -> AsyncIterator[None]:
        """Feed the response into ``chunker``, yielding whenever it may have chunks ready.
        This one reads raw PCM."""
        kind = response.headers.get("content-type", "")
        if "json" in kind or "text/" in kind:
            body = (await response.aread()).decode("utf-8", "replace")
            raise EngineError(f"{self.name} sent {kind} instead of audio: {_short(body)}",
                              engine=self.name, code="tts_bad_response")
        async for data in response.aiter_bytes():
            chunker.add_audio(data)
            yield

    async def synthesize(self, text: str, *, voice: VoiceOptions) -> AsyncIterator[TTSChunk]:
        args = self.request(text, voice)
        chunker = TimedChunker(text, self.sample_rate, untimed_after_ms=self.untimed_after_ms)
        try:
            async with self._client.stream("POST", **args) as response:
                if response.status_code >= 400:
                    body = (await response.aread()).decode("utf-8", "replace")
                    raise EngineError(f"{self.name} answered HTTP {response.status_code}: {_short(body)}",
                                      engine=self.name, code="tts_http_error")
                async for _ in self.read(response, chunker):
                    for chunk in chunker.chunks():
                        yield chunk
        except httpx.HTTPError as exc:
            raise EngineError(f"cannot reach the {self.name} TTS at {self.base_url}: {exc}", engine=self.name,
                              code="tts_unreachable") from exc
        for chunk in chunker.chunks(final=True):
            yield chunk

    def _bad_stream(self, what: str) -> EngineError:
        return EngineError(f"{self.name} sent {_short(what)}", engine=self.name, code="tts_bad_response")

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
        emotion = lookup(voice.emotion)
        body = {"model": self.model or "tts-1", "input": text, "voice": self.voice_id or voice.voice or "alloy",
                "response_format": "pcm", "speed": round(voice.speed * emotion.rate, 3)}
        if emotion is not NEUTRAL and body["model"].startswith("gpt-4o"):
            body["instructions"] = f"Speak in a {emotion.name} tone."  # the steerable models only
        body.update({k: v for k, v in self.settings.items() if k not in ("speed", "region")})
        return {"url": f"{self.base_url}/audio/speech", "headers": headers, "json": body}


class ElevenLabsTTS(HTTPStreamingTTS):
    """ElevenLabs streaming text-to-speech with character timestamps, raw PCM at 24 kHz.

    The stream is one JSON object per line: ``audio_base64`` and an ``alignment`` of the
    characters it covers (times in seconds from the start of the request's audio; null on
    some lines). The characters' times move the mouth (``timings.letter_phonemes``) and give
    the words that were heard."""

    name = "elevenlabs"
    default_base_url = "https://api.elevenlabs.io"
    untimed_after_ms = 1000.0

    def request(self, text: str, voice: VoiceOptions) -> dict[str, Any]:
        settings = {k: v for k, v in self.settings.items() if k != "region"}
        # an emotion changes the rate (the timed stream has no emotion control of its own)
        settings.setdefault("speed", round(voice.speed * lookup(voice.emotion).rate, 3))
        body: dict[str, Any] = {"text": text, "model_id": self.model or "eleven_flash_v2_5", "voice_settings": settings}
        if voice.language:
            body["language_code"] = voice.language
        return {"url": f"{self.base_url}/v1/text-to-speech/{self.voice_id}/stream/with-timestamps",
                "params": {"output_format": f"pcm_{self.sample_rate}"},
                "headers": {"xi-api-key": self.api_key}, "json": body}

    async def read(self, response: httpx.Response, chunker: TimedChunker) -> AsyncIterator[None]:
        offset = 0  # index in the phrase of the first pending character
        chars: list[str] = []  # characters of a word that may go on in the next line
        starts: list[float] = []
        ends: list[float] = []

        def complete_words(final: bool) -> None:
            nonlocal offset, chars, starts, ends
            cut = len(chars) if final else max((i + 1 for i, ch in enumerate(chars) if ch.isspace()), default=0)
            if cut:
                chunker.add_words(words_from_characters(chars[:cut], starts[:cut], ends[:cut], offset=offset))
                offset += cut
                chars, starts, ends = chars[cut:], starts[cut:], ends[cut:]

        async for line in response.aiter_lines():
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                audio = base64.b64decode(item.get("audio_base64") or "")
            except (ValueError, TypeError, AttributeError):
                raise self._bad_stream(line) from None
            chunker.add_audio(audio[: len(audio) // 2 * 2])
            alignment = item.get("alignment") or {}
            new = alignment.get("characters") or []
            if new:
                new_starts = [1000.0 * t for t in alignment["character_start_times_seconds"]]
                chunker.add_phonemes(letter_phonemes(new, new_starts))
                chars += new
                starts += new_starts
                ends += [1000.0 * t for t in alignment["character_end_times_seconds"]]
                complete_words(final=False)
            yield
        complete_words(final=True)
        yield


class CartesiaTTS(HTTPStreamingTTS):
    """Cartesia's ``/tts/sse``: base64 s16le PCM at 24 kHz with word and phoneme (IPA)
    timestamps, as server-sent events."""

    name = "cartesia"
    default_base_url = "https://api.cartesia.ai"
    api_version = "2025-04-16"
    untimed_after_ms = 1000.0

    def request(self, text: str, voice: VoiceOptions) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model_id": self.model or "sonic-2", "transcript": text,
            "voice": {"mode": "id", "id": self.voice_id},
            "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": self.sample_rate},
            "language": voice.language or "en",
            "add_timestamps": True, "add_phoneme_timestamps": True,
        }
        emotion = lookup(voice.emotion)
        speed = voice.speed * emotion.rate
        if str(body["model_id"]).startswith("sonic-3"):
            # sonic-3's own controls: a numeric speed and the emotion (Cartesia's names are ours)
            body["generation_config"] = {"speed": round(min(1.5, max(0.6, speed)), 3)}
            if emotion is not NEUTRAL:
                body["generation_config"]["emotion"] = emotion.name
        elif speed != 1.0:
            body["speed"] = "slow" if speed < 1.0 else "fast"
        return {"url": f"{self.base_url}/tts/sse", "json": body,
                "headers": {"X-API-Key": self.api_key, "Cartesia-Version": self.api_version}}

    async def read(self, response: httpx.Response, chunker: TimedChunker) -> AsyncIterator[None]:
        text_pos = 0
        event, data = "", []
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line.strip() and data:
                try:
                    item = json.loads("\n".join(data))
                except ValueError:
                    raise self._bad_stream("\n".join(data)) from None
                kind = item.get("type") or event
                event, data = "", []
                if kind == "error":
                    raise EngineError(f"cartesia: {item.get('message') or item.get('error') or item}",
                                      engine=self.name, code="tts_http_error")
                if kind == "chunk" and item.get("data"):
                    audio = base64.b64decode(item["data"])
                    chunker.add_audio(audio[: len(audio) // 2 * 2])
                elif kind == "timestamps" and item.get("word_timestamps"):
                    t = item["word_timestamps"]
                    words, text_pos = locate_words(chunker.text, zip(
                        t["words"], (1000.0 * x for x in t["start"]), (1000.0 * x for x in t["end"])), text_pos)
                    chunker.add_words(words)
                elif kind == "phoneme_timestamps" and item.get("phoneme_timestamps"):
                    t = item["phoneme_timestamps"]
                    chunker.add_phonemes(PhonemeTiming(ipa_mnemonic(p), 1000.0 * x)
                                         for p, x in zip(t["phonemes"], t["start"]))
                elif kind == "done":
                    return
                yield


ENGINES: dict[str, type[TextToSpeech]] = {
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
