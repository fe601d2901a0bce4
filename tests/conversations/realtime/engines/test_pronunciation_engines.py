"""Pronunciation dictionaries with the real voices: an alias rule changes what eSpeak NG and
Piper say (heard back by Whisper), an IPA rule reaches each engine's phonemes, and the chunks,
captions and transcript keep the written words."""
from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import resample, run, words_of

from conversations.realtime.engines import registry
from conversations.realtime.engines.base import STT_SAMPLE_RATE, VoiceOptions
from conversations.realtime.pronounce import Pronunciation, Rule, ipa_to_espeak, with_pronunciation

pytestmark = pytest.mark.slow

#: an acronym said in full: unmistakable in the audio and in what Whisper hears
ALIAS = Pronunciation(rules=(Rule("CVI", "conversational video interface"),))
#: British "tomato" (eSpeak's en-us and Piper's US voice say təˈmeɪɾoʊ)
IPA_TOMATO = Pronunciation(rules=(Rule("tomato", "təˈmɑːtəʊ", type="ipa"),))
ENGINES = ("espeak-ng", "piper")
#: American voices (eSpeak's "en" is British, and already says təˈmɑːtəʊ)
US_VOICE = {"espeak-ng": VoiceOptions(voice="en-us"), "piper": VoiceOptions()}


def _audio(chunks) -> tuple[np.ndarray, int]:
    return np.concatenate([c.pcm for c in chunks]), chunks[0].sample_rate


def _hear(stt, chunks) -> str:
    pcm, rate = _audio(chunks)
    audio = resample(pcm.astype(np.float32) / 32768, rate, STT_SAMPLE_RATE)
    return run(stt.transcribe(audio, language="en")).text


def _phonemes(chunks) -> list[str]:
    return [p.phoneme for c in chunks for p in c.phonemes if not p.phoneme.startswith("_")]


@pytest.mark.parametrize("name", ENGINES)
def test_an_alias_rule_changes_the_voice_and_the_transcript_keeps_the_word(name, stt):
    engine = registry.get_tts(name)
    text = "Welcome to CVI, my friend."
    plain = engine.synthesize_blocking(text, voice=VoiceOptions())
    ruled = with_pronunciation(engine, ALIAS).synthesize_blocking(text, voice=VoiceOptions())
    plain_s = len(_audio(plain)[0]) / plain[0].sample_rate
    ruled_s = len(_audio(ruled)[0]) / ruled[0].sample_rate
    # three spoken words (nine syllables) instead of three letters
    assert ruled_s > plain_s + 0.8, (plain_s, ruled_s)
    heard_plain, heard_ruled = words_of(_hear(stt, plain)), words_of(_hear(stt, ruled))
    assert "conversational" not in heard_plain and "interface" not in heard_plain, heard_plain
    assert {"conversational", "video", "interface"} <= set(heard_ruled), heard_ruled
    # what the pipeline keeps (captions, history, what was heard) is the written phrase
    assert "".join(c.text for c in ruled).strip() == text
    words = [w.word for c in ruled for w in c.words]
    assert "CVI" in words and "conversational" not in words and "interface" not in words, words
    for c in ruled:
        for w in c.words:
            assert c.text[w.char_start:w.char_start + w.char_len] == w.word


@pytest.mark.parametrize("name", ENGINES)
def test_an_ipa_rule_reaches_the_engines_phonemes(name):
    engine = registry.get_tts(name)
    text = "I like tomato soup."
    voice = US_VOICE[name]
    plain = _phonemes(engine.synthesize_blocking(text, voice=voice))
    ruled_chunks = with_pronunciation(engine, IPA_TOMATO).synthesize_blocking(text, voice=voice)
    ruled = _phonemes(ruled_chunks)
    # the American "-may-" of the voice's own reading, the British "-mah-" of the rule
    assert "eI" in plain and "A" not in "".join(plain), plain
    assert "A:" in ruled and "eI" not in ruled and "oU" in ruled, ruled
    assert "".join(c.text for c in ruled_chunks).strip() == text
    assert "tomato" in [w.word for c in ruled_chunks for w in c.words]


#: ("hot" is left out: eSpeak's en-us writes its [0] as IPA ɑː, which is its [A:], a near neighbour)
WORDS = ("banana", "thought", "church", "judge", "measure", "singing", "yellow", "voice", "house",
         "father", "bird", "pull", "about", "cat", "bed", "cup", "sheep", "water", "better", "city")


def test_ipa_converted_for_espeak_gives_espeaks_own_phonemes():
    """The mapping table: eSpeak's own IPA for a word (piper's phonemizer is eSpeak NG), converted by
    ipa_to_espeak and fed to eSpeak as [[phonemes]], is pronounced with the phonemes eSpeak uses
    when it reads the word."""
    from piper.phonemize_espeak import ESPEAK_DATA_DIR, EspeakPhonemizer

    phonemizer = EspeakPhonemizer(ESPEAK_DATA_DIR)
    espeak = registry.get_tts("espeak-ng")
    for word in WORDS:
        ipa = "".join("".join(s) for s in phonemizer.phonemize("en-us", word)).strip()
        own = _phonemes(espeak.synthesize_blocking(word, voice=VoiceOptions(voice="en-us")))
        given = _phonemes(espeak.synthesize_blocking(f"[[{ipa_to_espeak(ipa)}]]", voice=VoiceOptions(voice="en-us")))
        assert given == own, (word, ipa, ipa_to_espeak(ipa), own, given)


def test_a_call_says_the_alias_and_its_captions_and_transcript_keep_the_written_word(stt):
    """A pipeline built as a live call builds it (frontdoor.build_engines wraps the PAL's voice),
    in echo mode: the audio says the alias, every caption and the replica's utterance the text."""
    import dataclasses

    from bench.harness import RealtimeDriver
    from conversations.realtime import events as ev
    from conversations.realtime.agent import ConversationPipeline
    from conversations.realtime.config import PipelineConfig
    from conversations.realtime.frontdoor import build_engines

    text = "Welcome to CVI, my friend."
    cfg = PipelineConfig.from_layers("", "", {}, pipeline_mode="echo")
    cfg = dataclasses.replace(cfg, tts=dataclasses.replace(cfg.tts, pronunciation=ALIAS))

    async def main() -> None:
        pipe = ConversationPipeline(cfg, build_engines(cfg), conversation_id="cpronounce", input_buffer_ms=5000)
        drv = RealtimeDriver(pipe, speed=10.0)
        await pipe.start()
        await pipe.handle_client_message({"event_type": "conversation.echo", "properties": {
            "modality": "text", "text": text, "done": True}})
        hit = await drv.wait_event(ev.UTTERANCE, timeout_ms=20_000,
                                   where=lambda e: e["properties"]["role"] == "replica")
        assert hit is not None and hit[1]["properties"]["speech"] == text
        captions = [e["properties"]["speech"] for _, e in drv.rec.of_type(ev.UTTERANCE_STREAMING)]
        assert captions and captions[-1] == text
        assert not any("conversational" in c for c in captions), captions
        heard = await stt.transcribe(resample(drv.rec.audio().astype(np.float32) / 32768, 48_000, STT_SAMPLE_RATE),
                                     language="en")
        assert {"conversational", "video", "interface"} <= set(words_of(heard.text)), heard.text
        await pipe.close()

    run(main(), timeout=120)


def test_azure_is_given_the_ipa_as_an_ssml_phoneme_element():
    import xml.dom.minidom

    from conversations.realtime.engines.azure_speech import AzureTTS
    from conversations.realtime.pronounce import PHONEME_INPUT, SSMLText, rewrite

    tts = AzureTTS(api_key="k", settings={"region": "westeurope"})
    rw = rewrite("A tomato & <more>", IPA_TOMATO, PHONEME_INPUT[tts.name])
    ssml = tts.ssml(SSMLText(rw.spoken), VoiceOptions())
    assert '<phoneme alphabet="ipa" ph="təˈmɑːtəʊ">tomato</phoneme> &amp; &lt;more&gt;' in ssml
    xml.dom.minidom.parseString(ssml)  # well-formed: the service would refuse it otherwise
    assert "A &lt;b&gt; &amp; c" in tts.ssml("A <b> & c", VoiceOptions())  # plain text is still escaped
