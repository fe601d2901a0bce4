"""Whisper base on the short window: transcripts of eSpeak speech, language, word timings."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
from engine_helpers import ARTIFACTS, run, save_wav, word_error_rate, words_of

from conversations.realtime.engines import stt as stt_module
from conversations.realtime.engines.base import STT_SAMPLE_RATE, EngineError
from conversations.realtime.engines.stt import collapse_repeats, language_code, split_at_pauses

SENTENCES = [
    ("The weather is lovely today, so we are going for a walk in the park.", "en-us"),
    ("Could you please tell me how to get to the train station?", "en+f3"),
    ("I would like to order a large coffee with milk and a croissant.", "en-us+m3"),
    ("My sister lives in a small house near the river.", "en-us+f2"),
]


@pytest.mark.slow
def test_transcripts_match_the_words_of_several_voices(stt, speak):
    async def all_of_them():
        out = []
        for text, voice in SENTENCES:
            audio = speak(text, voice)
            out.append(await stt.transcribe(audio, language="en"))
        return out

    results = run(all_of_them(), timeout=120)
    errors = []
    for (text, voice), res in zip(SENTENCES, results):
        wer = word_error_rate(text, res.text)
        errors.append(wer)
        assert wer <= 0.4, (voice, text, res.text)
        assert res.language == "en" and res.elapsed_ms > 0
    assert sum(errors) / len(errors) <= 0.25, list(zip(errors, [r.text for r in results]))


@pytest.mark.slow
def test_short_replies_are_recognised(stt, speak):
    for text, voice in [("Yes.", "en-us"), ("No.", "en+f3"), ("Thank you.", "en-us+m3")]:
        res = stt.transcribe_blocking(speak(text, voice), language="en")
        assert words_of(res.text) == words_of(text), (voice, res.text)


@pytest.mark.slow
def test_detects_spanish_and_accepts_language_names(stt, speak):
    audio = speak("Hola, me gustaría reservar una mesa para dos personas esta noche.", "es")
    save_wav(ARTIFACTS / "stt_spanish.wav", audio, STT_SAMPLE_RATE)
    detected = run(stt.transcribe(audio))  # language=None: detect
    assert detected.language == "es"
    # Whisper base on eSpeak's Spanish is rough (and int8 on a loaded CPU varies a little from
    # run to run): most of the sentence's content words must come through.
    content = {"reservar", "mesa", "para", "dos", "personas", "noche"}
    assert len(content & set(words_of(detected.text))) >= 3, detected.text
    named = run(stt.transcribe(audio, language="spanish"))
    assert named.language == "es" and "mesa" in words_of(named.text)
    with pytest.raises(EngineError):
        run(stt.transcribe(audio, language="klingon"))


@pytest.mark.slow
def test_word_timestamps_and_silence(stt, speak):
    text = "Please send the report to my office before noon."
    audio = np.concatenate([np.zeros(8000, np.float32), speak(text, "en-us")])
    res = stt.transcribe_blocking(audio, language="en", word_timestamps=True)
    assert word_error_rate(text, res.text) <= 0.3, res.text
    assert len(res.words) >= 7
    starts = [w.start_ms for w in res.words]
    assert starts == sorted(starts)
    assert 300 <= res.words[0].start_ms <= 900  # the speech starts at 500 ms
    assert res.words[-1].end_ms <= 1000 * len(audio) / STT_SAMPLE_RATE + 200
    # silence and near-silence give no words (no "Thank you." hallucination)
    quiet = np.random.default_rng(1).normal(0, 0.001, 2 * STT_SAMPLE_RATE).astype(np.float32)
    assert stt.transcribe_blocking(np.zeros(2 * STT_SAMPLE_RATE, np.float32)).text == ""
    assert stt.transcribe_blocking(quiet, language="en").text == ""
    assert stt.transcribe_blocking(np.zeros(0, np.float32)).text == ""


@pytest.mark.slow
def test_hotwords_are_a_hint(stt, speak):
    audio = speak("Please tell me more about OpenCVI and Tavus.", "en-us")
    res = stt.transcribe_blocking(audio, language="en", hotwords="OpenCVI, Tavus")
    assert "OpenCVI" in res.text and "Tavus" in res.text, res.text


@pytest.mark.slow
def test_audio_longer_than_one_window_is_split_at_a_pause(stt, speak, monkeypatch):
    monkeypatch.setattr(stt_module, "MAX_WINDOW_S", 6.0)  # three sentences, two windows
    parts = ["The red car stopped at the light.", "A small dog crossed the street.", "Then it began to rain."]
    gap = np.zeros(int(0.6 * STT_SAMPLE_RATE), np.float32)
    audio = np.concatenate([x for p in parts for x in (speak(p, "en-us"), gap)])
    assert len(audio) > 6.0 * STT_SAMPLE_RATE
    res = stt.transcribe_blocking(audio, language="en", word_timestamps=True)
    assert word_error_rate(" ".join(parts), res.text) <= 0.3, res.text
    starts = [w.start_ms for w in res.words]
    assert starts == sorted(starts) and starts[-1] > 4000


@pytest.mark.slow
def test_concurrent_sessions_share_the_model(stt, speak):
    a = speak("The train leaves at noon.", "en-us")
    b = speak("I lost my umbrella yesterday.", "en+f3")

    async def both():
        return await asyncio.gather(stt.transcribe(a, language="en"), stt.transcribe(b, language="en"))

    ra, rb = run(both())
    assert word_error_rate("The train leaves at noon.", ra.text) <= 0.4, ra.text
    assert word_error_rate("I lost my umbrella yesterday.", rb.text) <= 0.4, rb.text


def test_language_code():
    assert language_code(None) is None
    assert language_code("multilingual") is None
    assert language_code("Spanish") == "es"
    assert language_code("es-ES") == "es"
    assert language_code("pt_BR") == "pt"
    assert language_code("en") == "en"
    with pytest.raises(ValueError):
        language_code("elvish")


def test_collapse_repeats_and_split_at_pauses():
    assert collapse_repeats("I am here. I am here. I am here. I am here. Thanks") == "I am here. Thanks"
    assert collapse_repeats("No, no.") == "No, no."
    audio = np.ones(10 * STT_SAMPLE_RATE, np.float32)
    audio[int(3.5 * STT_SAMPLE_RATE):int(3.7 * STT_SAMPLE_RATE)] = 0  # the only pause
    pieces = split_at_pauses(audio, 4 * STT_SAMPLE_RATE)
    assert sum(len(p) for _, p in pieces) == len(audio)
    assert all(len(p) <= 4 * STT_SAMPLE_RATE for _, p in pieces)
    assert 3.5 <= pieces[1][0] / STT_SAMPLE_RATE <= 3.7
    assert stt_module.max_new_tokens_for(30.0) <= 200


@pytest.mark.slow
def test_azure_recognition_through_the_sdk(speak):
    """Azure STT: the SDK streams the turn's 16 kHz audio to the service (here a local stand-in
    that hears it with Whisper) in the conversation's locale, and the detailed result comes
    back as the transcript with word offsets."""
    from conversations.realtime.engines.azure_speech import AzureSTT
    from tests.conversations.realtime.engines.azure_server import AzureSpeechServer

    audio = speak("The library opens at nine in the morning.")
    with AzureSpeechServer() as server:
        stt = AzureSTT(api_key="k-2", base_url=server.host)
        result = run(stt.transcribe(audio, language="en", hotwords="library", word_timestamps=True))
    hello = server.handshakes[0]
    assert hello["path"].startswith("/speech/recognition/") and "language=en-US" in hello["path"]
    assert hello["headers"]["ocp-apim-subscription-key"] == "k-2"
    context = next(m for m in server.messages if "Path:speech.context" in m)
    assert "library" in context  # the hotwords went as a phrase list
    got = np.frombuffer(server.received[0], "<i2")
    assert abs(len(got) - len(audio)) < 2 and np.abs(got.astype(np.float32) / 32768 - audio).max() < 1e-3
    assert word_error_rate("The library opens at nine in the morning.", result.text) < 0.2
    assert [w.word.strip(" .").lower() for w in result.words][:2] == ["the", "library"]
    assert all(a.start_ms <= b.start_ms for a, b in zip(result.words, result.words[1:]))


def test_azure_recognition_failures_are_clear():
    from conversations.realtime.engines.azure_speech import AzureSTT
    from tests.conversations.realtime.engines.azure_server import AzureSpeechServer

    with AzureSpeechServer(refuse=True) as server:
        stt = AzureSTT(api_key="wrong", base_url=server.host, timeout=30)
        with pytest.raises(EngineError, match="azure-stt at http://127.0.0.1:.* failed") as err:
            run(stt.transcribe(np.zeros(16_000, np.float32), language="en"))
    assert "wrong" not in str(err.value)
    with pytest.raises(EngineError, match="needs voice_settings.region or base_url"):
        AzureSTT(api_key="k")


@pytest.mark.parametrize("heard, said", [
    ("How far is it? How far is it", "How far is it?"),  # written out twice
    ("I would like to order a orange coffee with milk and a croissant. I would like to order a orange coffee "
     "with milk and", "I would like to order a orange coffee with milk and a croissant."),  # echo cut by the window
    ("I want a coffee. I want a tea.", "I want a coffee. I want a tea."),  # two sentences said
    ("Book a table for two. Book a table", "Book a table for two. Book a table"),  # under 4 words: kept
])
def test_a_decoder_echo_of_the_utterance_is_dropped(heard, said):
    from conversations.realtime.engines.stt import _collapse_doubled_sentence

    assert _collapse_doubled_sentence(heard, min_words=4) == said


def test_a_piece_that_copies_the_previous_text_is_recognised():
    from conversations.realtime.engines.stt import copies_prompt

    before = "The red car stopped at the light. A small dog crossed the street."
    assert copies_prompt("The red car stopped at the light.", before)
    assert copies_prompt("a small dog crossed", before)
    assert not copies_prompt("Then it began to rain.", before)
    assert not copies_prompt("The light.", before)  # too short to tell from a real repetition
    assert not copies_prompt("The red car crossed the street.", before)  # words of it, not a run
