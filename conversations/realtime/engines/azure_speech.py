"""Azure AI Speech through Microsoft's SDK (``azure-cognitiveservices-speech``).

TTS: the SDK streams the synthesis over a WebSocket: raw 24 kHz PCM (``synthesizing``
events), viseme events (an id 0–21 at an audio offset: the mouth shape, mapped in
``timings.AZURE_VISEMES``) and word boundaries (offset and duration of each word). They go
through the same ``TimedChunker`` as the other engines' timings, so the face's mouth follows
Azure's own visemes and an interruption knows which words were heard.

STT: the turn's audio is pushed into a ``PushAudioInputStream`` and recognised as one
utterance (the pipeline's turn-taking already decided where the turn ends, so Azure's own
segmentation at pauses is pushed out to 5 s), with word offsets from the detailed result.

The SDK calls back on its own threads; every event is handed to the event loop through a
queue, and :func:`apply_tts_event` (pure, tested with recorded event sequences) turns them
into chunk input. Where it connects: ``voice_settings.region`` (the Azure region) or
``base_url`` (``https://host`` for a proxy or a container, or a full ``wss://…`` endpoint).
"""
from __future__ import annotations

import asyncio
import html
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import numpy as np

from ..emotion import NEUTRAL, lookup
from ..pronounce import SSMLText
from . import outbound
from .base import EngineError, PhonemeTiming, SpeechToText, TextToSpeech, Transcript, TTSChunk, VoiceOptions, WordTiming
from .timings import TimedChunker, azure_viseme, locate_words

TICKS_PER_MS = 10_000  # the SDK's offsets are in 100 ns ticks
SAMPLE_RATE = 24_000
DEFAULT_VOICE = "en-US-AvaMultilingualNeural"
#: audio held for timings before it goes on without them: the service sends word boundaries and
#: visemes before the audio they describe, but the SDK's callbacks may deliver audio first
UNTIMED_AFTER_MS = 2000.0
#: the longest pause Azure's recogniser may hear inside one turn without ending its result (ms)
SEGMENT_SILENCE_MS = 5000
#: ISO 639-1 → the locale Azure's recogniser wants (others: "xx-XX" from the code)
_LOCALES = {"en": "en-US", "zh": "zh-CN", "ja": "ja-JP", "ko": "ko-KR", "hi": "hi-IN", "sv": "sv-SE",
            "da": "da-DK", "uk": "uk-UA", "el": "el-GR", "cs": "cs-CZ", "he": "he-IL", "vi": "vi-VN",
            "ar": "ar-SA", "pt": "pt-BR", "ms": "ms-MY", "nb": "nb-NO", "no": "nb-NO", "fa": "fa-IR"}


def _sdk():  # noqa: ANN202 - the SDK module
    try:
        import azure.cognitiveservices.speech as speechsdk
    except ImportError as exc:  # pragma: no cover - in requirements.txt
        raise EngineError("the Azure Speech SDK is not installed (azure-cognitiveservices-speech is in "
                          "requirements.txt)", engine="azure") from exc
    return speechsdk


def endpoint_url(region: str, base_url: str, service: str) -> str:
    """The URL the SDK will connect to (for the private-address rule and messages)."""
    if base_url:
        return base_url.rstrip("/")
    return f"https://{region}.{service}.speech.microsoft.com"


def speech_config(*, api_key: str, region: str, base_url: str, engine: str):  # noqa: ANN201
    """An SDK ``SpeechConfig`` for a region, a host (``https://host``, the standard paths) or
    a full endpoint URL (``wss://…/path``)."""
    sdk = _sdk()
    try:
        if base_url:
            url = httpx.URL(base_url)
            scheme = {"https": "wss", "http": "ws"}.get(url.scheme, url.scheme)
            if scheme not in ("ws", "wss"):
                raise EngineError(f"{engine}: base_url must be http(s):// or ws(s)://, not {base_url!r}",
                                  engine=engine, code="bad_config")
            url = url.copy_with(scheme=scheme)
            if url.path in ("", "/"):
                return sdk.SpeechConfig(subscription=api_key or None, host=f"{scheme}://{url.netloc.decode()}")
            return sdk.SpeechConfig(subscription=api_key or None, endpoint=str(url))
        if region:
            return sdk.SpeechConfig(subscription=api_key, region=region)
    except ValueError as exc:
        raise EngineError(f"{engine}: {exc}", engine=engine, code="bad_config") from exc
    raise EngineError(f"the {engine} engine needs voice_settings.region or base_url", engine=engine,
                      code="bad_config")


async def _check_address(url: str, engine: str) -> None:
    try:
        await outbound.check_request(httpx.Request("GET", url.replace("wss://", "https://", 1)
                                                    .replace("ws://", "http://", 1)))
    except httpx.ConnectError as exc:
        raise EngineError(f"{engine}: {exc}", engine=engine, code="tts_unreachable") from exc


def _cancellation_error(details: Any, engine: str, where: str) -> EngineError:  # noqa: ANN401 - SDK object
    text = " ".join(str(getattr(details, "error_details", "") or details).split())
    code = "tts_unreachable" if "connection" in text.lower() or "websocket" in text.lower() else "tts_http_error"
    return EngineError(f"{engine} at {where} failed: {text or 'cancelled'}", engine=engine, code=code)


# ---------------------------------------------------------------------------- TTS
def apply_tts_event(chunker: TimedChunker, event: tuple, *, state: dict[str, int]) -> bool:
    """Feed one SDK event (as queued by :class:`AzureTTS`) into ``chunker``; True at the end.

    Events: ``("audio", bytes)``, ``("viseme", viseme_id, offset_ticks)``,
    ``("word", text, offset_ticks, duration_ms, boundary_type)`` (0 word, 1 punctuation,
    2 sentence), ``("done",)``. ``state`` keeps the position in the text between calls."""
    kind = event[0]
    if kind == "audio":
        data = event[1]
        chunker.add_audio(data[: len(data) // 2 * 2])
    elif kind == "viseme":
        chunker.add_phonemes([PhonemeTiming(azure_viseme(event[1]), event[2] / TICKS_PER_MS)])
    elif kind == "word":
        text, offset, duration, boundary = event[1:5]
        if boundary == 0 and text.strip():
            start = offset / TICKS_PER_MS
            words, state["text_pos"] = locate_words(chunker.text, [(text, start, start + duration)],
                                                    state.get("text_pos", 0))
            chunker.add_words(words)
    return kind == "done"


class AzureTTS(TextToSpeech):
    """Azure neural voices (``voice_id``, default en-US-AvaMultilingualNeural) with visemes."""

    name = "azure"
    sample_rate = SAMPLE_RATE

    def __init__(self, *, api_key: str = "", voice_id: str = "", model: str = "", base_url: str = "",
                 settings: Mapping[str, Any] | None = None, timeout: float = 20.0) -> None:
        self.settings = dict(settings or {})
        self.region = str(self.settings.get("region") or "")
        self.voice_id = voice_id or DEFAULT_VOICE
        self.url = endpoint_url(self.region, base_url, "tts")
        self.timeout = timeout
        sdk = _sdk()
        config = speech_config(api_key=api_key, region=self.region, base_url=base_url, engine=self.name)
        config.set_speech_synthesis_output_format(sdk.SpeechSynthesisOutputFormat.Raw24Khz16BitMonoPcm)
        config.set_property(sdk.PropertyId.SpeechServiceResponse_RequestWordBoundary, "true")
        self._config = config
        self._synth = None
        self._queue: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()

    def ssml(self, text: str, voice: VoiceOptions) -> str:
        lang = voice.language or "en"
        locale = _LOCALES.get(lang, lang) if len(lang) == 2 else lang
        # an emotion (tts_emotion_control): the voice's speaking style where it has one (a voice
        # without that style ignores it) plus the emotion's prosody, which every voice follows
        emotion = lookup(voice.emotion)
        prosody = f"rate='{round((voice.speed * emotion.rate - 1.0) * 100):+d}%'"
        if emotion is not NEUTRAL:
            prosody += f" pitch='{emotion.pitch_st:+.1f}st' volume='{round((emotion.volume - 1.0) * 100):+d}%'"
        # a phrase with a pronunciation dictionary's <phoneme> elements comes already escaped
        body = f"<prosody {prosody}>{text if isinstance(text, SSMLText) else html.escape(text)}</prosody>"
        if emotion.azure_style:
            body = f"<mstts:express-as style='{emotion.azure_style}'>{body}</mstts:express-as>"
        return (f"<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' "
                f"xmlns:mstts='https://www.w3.org/2001/mstts' xml:lang='{html.escape(locale)}'>"
                f"<voice name='{html.escape(self.voice_id)}'><mstts:viseme type='redlips_front'/>"
                f"{body}</voice></speak>")

    def _synthesizer(self):  # noqa: ANN202 - SDK object
        """One synthesizer per session (it keeps its WebSocket open between phrases); its
        callbacks post to the queue of the phrase in progress."""
        if self._synth is None:
            sdk = _sdk()
            synth = sdk.SpeechSynthesizer(speech_config=self._config, audio_config=None)

            def post(*item: Any) -> None:
                loop, queue = self._loop, self._queue
                if loop is not None and queue is not None:
                    loop.call_soon_threadsafe(queue.put_nowait, item)

            synth.synthesizing.connect(lambda e: post("audio", bytes(e.result.audio_data)))
            synth.viseme_received.connect(lambda e: post("viseme", e.viseme_id, e.audio_offset))
            synth.synthesis_word_boundary.connect(lambda e: post(
                "word", e.text, e.audio_offset, e.duration.total_seconds() * 1000.0, int(e.boundary_type.value)))
            synth.synthesis_completed.connect(lambda e: post("done"))
            synth.synthesis_canceled.connect(lambda e: post("cancelled", e.result.cancellation_details))
            self._synth = synth
        return self._synth

    async def synthesize(self, text: str, *, voice: VoiceOptions) -> AsyncIterator[TTSChunk]:
        await _check_address(self.url, self.name)
        async with self._lock:
            synth = self._synthesizer()
            self._loop, self._queue = asyncio.get_running_loop(), asyncio.Queue()
            queue = self._queue
            chunker = TimedChunker(text, self.sample_rate, untimed_after_ms=UNTIMED_AFTER_MS)
            state: dict[str, int] = {}
            synth.speak_ssml_async(self.ssml(text, voice))
            finished = False
            try:
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), self.timeout)
                    except asyncio.TimeoutError:
                        raise EngineError(f"{self.name} at {self.url} sent nothing for {self.timeout:.0f} s",
                                          engine=self.name, code="tts_unreachable") from None
                    if event[0] == "cancelled":
                        raise _cancellation_error(event[1], self.name, self.url)
                    if apply_tts_event(chunker, event, state=state):
                        break
                    for chunk in chunker.chunks():
                        yield chunk
                finished = True
            finally:
                self._queue = None
                if not finished:
                    # interrupted (or failed): stop the synthesis so the next phrase starts clean
                    await asyncio.to_thread(lambda: synth.stop_speaking_async().get())
        for chunk in chunker.chunks(final=True):
            yield chunk

    async def aclose(self) -> None:
        synth, self._synth = self._synth, None
        if synth is not None:
            # the session's WebSocket to the service (kept open between phrases) closes now
            await asyncio.to_thread(lambda: _sdk().Connection.from_speech_synthesizer(synth).close())


# ---------------------------------------------------------------------------- STT
def locale_for(language: str | None) -> str:
    if not language:
        return "en-US"
    if len(language) > 2:
        return language
    return _LOCALES.get(language, f"{language}-{language.upper()}")


def words_from_detailed(result_json: str) -> list[WordTiming]:
    """Word timings of one recognised phrase (the SDK's detailed JSON; offsets in ticks from
    the start of the audio pushed)."""
    try:
        best = (json.loads(result_json).get("NBest") or [{}])[0]
    except (ValueError, AttributeError):
        return []
    return [WordTiming(word=w.get("Word", ""), start_ms=w.get("Offset", 0) / TICKS_PER_MS,
                       end_ms=(w.get("Offset", 0) + w.get("Duration", 0)) / TICKS_PER_MS)
            for w in best.get("Words") or ()]


class AzureSTT(SpeechToText):
    """Azure speech recognition of a turn's audio (any language Azure hears; the conversation's
    language picks the locale)."""

    name = "azure-stt"

    def __init__(self, *, api_key: str = "", region: str = "", base_url: str = "", timeout: float = 20.0) -> None:
        self.api_key, self.region, self.base_url = api_key, region, base_url
        self.url = endpoint_url(region, base_url, "stt")
        self.timeout = timeout
        speech_config(api_key=api_key, region=region, base_url=base_url, engine=self.name)  # fail early

    async def transcribe(self, audio: np.ndarray, *, language: str | None = None, hotwords: str | None = None,
                         word_timestamps: bool = False) -> Transcript:
        await _check_address(self.url, self.name)
        loop = asyncio.get_running_loop()
        started = loop.time()
        sdk = _sdk()
        config = speech_config(api_key=self.api_key, region=self.region, base_url=self.base_url, engine=self.name)
        config.speech_recognition_language = locale_for(language)
        config.output_format = sdk.OutputFormat.Detailed
        config.request_word_level_timestamps()
        # the turn is already one utterance (the pipeline's turn-taking decided where it ends):
        # Azure must not cut it at a pause into several results
        config.set_property(sdk.PropertyId.Speech_SegmentationSilenceTimeoutMs, str(SEGMENT_SILENCE_MS))
        stream = sdk.audio.PushAudioInputStream(
            stream_format=sdk.audio.AudioStreamFormat(samples_per_second=16_000, bits_per_sample=16, channels=1))
        recognizer = sdk.SpeechRecognizer(speech_config=config, audio_config=sdk.audio.AudioConfig(stream=stream))
        if hotwords:
            phrases = sdk.PhraseListGrammar.from_recognizer(recognizer)
            for phrase in hotwords.replace(";", ",").split(","):
                if phrase.strip():
                    phrases.addPhrase(phrase.strip())
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()

        def run() -> Any:  # noqa: ANN401 - the SDK's result
            for i in range(0, len(pcm), 3200):  # 100 ms pieces, as a live stream arrives
                stream.write(pcm[i: i + 3200])
            stream.close()
            return recognizer.recognize_once_async().get()

        try:
            result = await asyncio.wait_for(asyncio.to_thread(run), self.timeout)
        except asyncio.TimeoutError:
            raise EngineError(f"{self.name} at {self.url} gave no result in {self.timeout:.0f} s",
                              engine=self.name, code="stt_unreachable") from None
        text, words = "", []
        if result.reason == sdk.ResultReason.RecognizedSpeech:
            text, words = result.text.strip(), words_from_detailed(result.json)
        elif result.reason == sdk.ResultReason.Canceled:
            details = result.cancellation_details
            if details.reason == sdk.CancellationReason.Error:
                raise _cancellation_error(details, self.name, self.url)
        return Transcript(text=text, language=language or "",
                          words=tuple(words) if word_timestamps else (),
                          elapsed_ms=1000.0 * (loop.time() - started))
