"""eSpeak NG through its C library: audio, word/phoneme timings, voices, streaming, cancel."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
from engine_helpers import ARTIFACTS, run, save_wav

from conversations.realtime.engines.base import EngineError, TTSChunk, VoiceOptions

pytestmark = pytest.mark.slow

SENTENCE = "Hello there, my name is Anna and I will be your guide today."


async def collect(tts, text: str, voice: VoiceOptions) -> list[TTSChunk]:
    return [chunk async for chunk in tts.synthesize(text, voice=voice)]


def test_speech_is_audible_with_word_timings_in_order(tts):
    chunks = run(collect(tts, SENTENCE, VoiceOptions(voice="en-us")))
    assert len(chunks) == 1
    chunk = chunks[0]
    assert chunk.sample_rate == tts.sample_rate == 22050
    assert chunk.pcm.dtype == np.int16
    save_wav(ARTIFACTS / "tts_sentence.wav", chunk.pcm, chunk.sample_rate)
    assert 2000 < chunk.duration_ms < 6000
    rms = float(np.sqrt(np.mean(chunk.pcm.astype(np.float64) ** 2)))
    assert rms > 500 and int(np.abs(chunk.pcm).max()) > 5000

    words = chunk.words
    assert [w.word for w in words] == ["Hello", "there", "my", "name", "is", "Anna", "and", "I",
                                       "will", "be", "your", "guide", "today"]
    for w in words:  # char positions point at the word in the chunk's text
        assert chunk.text[w.char_start:w.char_start + w.char_len] == w.word
        assert w.end_ms >= w.start_ms
    starts = [w.start_ms for w in words]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert starts[0] < 100
    # the words cover the audio: the last ends near the end (only the final pause after it)
    assert words[-1].end_ms <= chunk.duration_ms
    assert words[-1].end_ms > 0.75 * chunk.duration_ms

    phonemes = chunk.phonemes
    assert len(phonemes) > 30
    times = [p.start_ms for p in phonemes]
    assert times == sorted(times) and times[-1] <= chunk.duration_ms
    assert all(p.phoneme and "'" not in p.phoneme for p in phonemes)


def test_audio_under_a_word_is_voiced_and_the_pause_is_quiet(tts):
    # "One." and "Two." are two sentences: two chunks, each with its own word
    chunks = tts.synthesize_blocking("One. Two.", voice=VoiceOptions(voice="en-us"))
    assert [c.text for c in chunks] == ["One. ", "Two."]
    for c in chunks:
        [w] = c.words
        a, b = (int(t * c.sample_rate / 1000) for t in (w.start_ms, w.end_ms))
        voiced = np.abs(c.pcm[a:b].astype(np.int32)).mean()
        after = np.abs(c.pcm[b:].astype(np.int32)).mean() if b < len(c.pcm) - 100 else 0
        assert voiced > 5 * max(after, 1)


def test_long_text_streams_sentence_by_sentence(tts):
    text = "The first sentence is here. The second one follows! And a third, with a comma?"
    chunks = run(collect(tts, text, VoiceOptions(voice="en-us")))
    assert len(chunks) == 3
    assert "".join(c.text for c in chunks) == text
    for c in chunks:  # timings are relative to each chunk
        assert c.words and c.words[0].start_ms < 100
        assert c.words[-1].end_ms <= c.duration_ms
        for w in c.words:
            assert c.text[w.char_start:w.char_start + w.char_len] == w.word


def test_speed_voice_and_language(tts):
    normal = tts.synthesize_blocking(SENTENCE, voice=VoiceOptions(voice="en-us"))[0]
    fast = tts.synthesize_blocking(SENTENCE, voice=VoiceOptions(voice="en-us", speed=1.6))[0]
    assert fast.duration_ms < 0.8 * normal.duration_ms
    female = tts.synthesize_blocking(SENTENCE, voice=VoiceOptions(voice="en-us+f3"))[0]
    assert not np.array_equal(female.pcm[:5000], normal.pcm[:5000])
    spanish = tts.synthesize_blocking("Hola, ¿cómo estás?", voice=VoiceOptions(language="spanish"))[0]
    assert [w.word for w in spanish.words] == ["Hola", "cómo", "estás"]
    # a regional voice eSpeak names differently falls back to the language's voice
    british = tts.synthesize_blocking("Good morning.", voice=VoiceOptions(voice="en-gb+m3"))[0]
    assert british.duration_ms > 300


def test_unknown_voice_is_an_engine_error(tts):
    with pytest.raises(EngineError, match="voice"):
        run(collect(tts, "Hello.", VoiceOptions(voice="no-such-voice-xx")))
    # and the engine is fine afterwards
    assert run(collect(tts, "Still here.", VoiceOptions(voice="en-us")))[0].duration_ms > 300


def test_closing_the_stream_early_and_concurrent_callers(tts):
    text = " ".join(f"This is sentence number {i}." for i in range(12))

    async def first_only():
        agen = tts.synthesize(text, voice=VoiceOptions(voice="en-us"))
        chunk = await agen.__anext__()
        await agen.aclose()
        return chunk

    chunk = run(first_only())
    assert chunk.text.startswith("This is sentence number 0")

    async def together():
        return await asyncio.gather(collect(tts, "Alpha bravo charlie.", VoiceOptions(voice="en-us")),
                                    collect(tts, "Delta echo foxtrot.", VoiceOptions(voice="en-us+f2")))

    a, b = run(together())
    assert [w.word for w in a[0].words] == ["Alpha", "bravo", "charlie"]
    assert [w.word for w in b[0].words] == ["Delta", "echo", "foxtrot"]
    solo = tts.synthesize_blocking("Alpha bravo charlie.", voice=VoiceOptions(voice="en-us"))[0]
    # the lock kept the C library's state apart (eSpeak's output varies by a few samples)
    assert abs(len(solo.pcm) - len(a[0].pcm)) < 50


def test_empty_text_yields_nothing(tts):
    assert run(collect(tts, "   ", VoiceOptions(voice="en-us"))) == []
