"""tts_emotion_control: emotion tags in the spoken text change the voice (pitch and rate measured on
the real embedded engines' audio), are never spoken nor shown, work in conversation.echo, and are
removed and ignored when the option is off."""
from __future__ import annotations

import numpy as np
import pytest

from conversations.realtime import events as ev
from conversations.realtime.emotion import EMOTION_NOTE, EmotionalPhrases, lookup, strip_tags
from conversations.realtime.engines.base import VoiceOptions
from tests.conversations.realtime.realtime_fakes import FakeLLM, make_pipeline, run

SENTENCE = "I have some news for you about the trip we planned last week."


def f0_and_voiced_s(pcm: np.ndarray, rate: int) -> tuple[float, float]:
    """Median pitch (Hz) of the voiced 40 ms frames (autocorrelation, 60-400 Hz) and how long the
    voiced audio lasts (s)."""
    x = pcm.astype(np.float64) / 32768.0
    win, hop = int(0.04 * rate), int(0.01 * rate)
    lo, hi = int(rate / 400), int(rate / 60)
    level = np.sqrt(np.mean(x ** 2))
    f0s = []
    for i in range(0, len(x) - win, hop):
        f = x[i:i + win] - x[i:i + win].mean()
        if np.sqrt(np.mean(f ** 2)) < 0.3 * level:
            continue
        ac = np.correlate(f, f, "full")[win - 1:]
        if ac[0] <= 0:
            continue
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] / ac[0] > 0.5:
            f0s.append(rate / lag)
    return float(np.median(f0s)), len(f0s) * hop / rate


def spoken(tts, text: str, emotion: str = "", *, times: int = 3) -> tuple[float, float]:
    """Median pitch and voiced time of ``times`` syntheses: eSpeak's voiced time varies by about
    2 % between two syntheses of the same text (1.70 to 1.75 s here), as much as the margins."""
    readings = []
    for _ in range(times):
        chunks = tts.synthesize_blocking(text, voice=VoiceOptions(voice="en-us", emotion=emotion))
        rate = chunks[0].sample_rate
        assert all(c.sample_rate == rate for c in chunks)
        readings.append(f0_and_voiced_s(np.concatenate([c.pcm for c in chunks]), rate))
    return float(np.median([r[0] for r in readings])), float(np.median([r[1] for r in readings]))


# ---------------------------------------------------------------------------- reading the tags
def test_tags_cut_across_deltas_are_read_and_end_the_phrase_before_them():
    sp = EmotionalPhrases(enabled=True)
    out = []
    for piece in ('<emotion val', 'ue="happy"/> Great news, we won! Now ', 'the bad part. <emo',
                  "tion value='sadness' />It rained all day.</emotion> See you 3 < 4 times."):
        out += sp.push(piece)
    out += sp.flush()
    assert out == [("Great news,", "happy"), ("we won!", "happy"), ("Now the bad part.", "happy"),
                   ("It rained all day.", "sad"), ("See you 3 < 4 times.", "neutral")]
    assert all("<emotion" not in p and "value" not in p for p, _ in out)


def test_off_the_tags_are_removed_and_ignored():
    sp = EmotionalPhrases(enabled=False)
    out = sp.push('<emotion value="angry"/>Stop that.<emotion value="calm"/>Thank') + sp.push(" you.") + sp.flush()
    assert out == [("Stop that.", "neutral"), ("Thank you.", "neutral")]
    assert strip_tags('Hi <emotion value="happy"/> there</emotion>.') == "Hi there ."
    assert lookup("HAPPINESS").name == "happy" and lookup("no-such-feeling").name == "neutral"


# ---------------------------------------------------------------------------- the voices
@pytest.mark.slow
def test_espeak_speaks_an_emotion_with_its_pitch_and_rate():
    from conversations.realtime.engines.registry import get_tts

    tts = get_tts("espeak-ng")
    f0, dur = spoken(tts, SENTENCE)
    happy_f0, happy_dur = spoken(tts, SENTENCE, "happy")
    sad_f0, sad_dur = spoken(tts, SENTENCE, "sad")
    assert happy_f0 > 1.06 * f0 and sad_f0 < 0.94 * f0, (f0, happy_f0, sad_f0)
    assert happy_dur < 0.97 * dur and sad_dur > 1.08 * dur, (dur, happy_dur, sad_dur)
    # eSpeak keeps its settings globally: the neutral voice is back afterwards
    assert abs(spoken(tts, SENTENCE)[0] - f0) < 0.02 * f0


@pytest.mark.slow
def test_piper_speaks_an_emotion_with_its_pitch_and_rate():
    from conversations.realtime.engines.registry import get_tts

    tts = get_tts("piper")
    plain = tts.synthesize_blocking(SENTENCE, voice=VoiceOptions())
    happy = tts.synthesize_blocking(SENTENCE, voice=VoiceOptions(emotion="happy"))
    sad = tts.synthesize_blocking(SENTENCE, voice=VoiceOptions(emotion="sad"))
    (f0, _), (happy_f0, _), (sad_f0, _) = (
        f0_and_voiced_s(np.concatenate([c.pcm for c in chunks]), chunks[0].sample_rate) for chunks in (plain, happy, sad))
    # Piper's durations vary a little from run to run (its noise_w): the whole length is steady
    dur, happy_dur, sad_dur = (sum(c.duration_ms for c in chunks) for chunks in (plain, happy, sad))
    assert happy_f0 > 1.06 * f0 and sad_f0 < 0.94 * f0, (f0, happy_f0, sad_f0)
    assert happy_dur < 0.96 * dur and sad_dur > 1.08 * dur, (dur, happy_dur, sad_dur)
    # the timings follow the relabelled rate: the last word ends inside the audio
    last = happy[-1]
    assert last.words and last.words[-1].end_ms <= last.duration_ms + 1


def test_cloud_engines_are_asked_for_the_emotion_in_their_own_terms():
    from conversations.realtime.engines.cloud_tts import AzureTTS, CartesiaTTS, OpenAISpeechTTS

    happy = VoiceOptions(language="en", emotion="happy")
    azure = AzureTTS(api_key="k", settings={"region": "westeurope"})
    ssml = azure.ssml("Great news.", happy)
    assert "<mstts:express-as style='cheerful'>" in ssml and "pitch='+2.0st'" in ssml and "rate='+8%'" in ssml
    assert "express-as" not in azure.ssml("Great news.", VoiceOptions(language="en"))
    cartesia = CartesiaTTS(api_key="k", voice_id="v", model="sonic-3", base_url="http://127.0.0.1:9")
    assert cartesia.request("Great news.", happy)["json"]["generation_config"] == {"speed": 1.08, "emotion": "happy"}
    assert "<emotion" not in cartesia.request("Great news.", happy)["json"]["transcript"]
    openai = OpenAISpeechTTS(model="gpt-4o-mini-tts", base_url="http://127.0.0.1:9")
    body = openai.request("Great news.", happy)["json"]
    assert body["speed"] == 1.08 and "happy" in body["instructions"]
    assert "instructions" not in OpenAISpeechTTS(base_url="http://127.0.0.1:9").request("Hi.", happy)["json"]


# ---------------------------------------------------------------------------- a call
def _echo(text: str, *, emotion_control: bool) -> tuple[np.ndarray, list[str], list[str]]:
    """Echo ``text`` through a pipeline speaking with the real eSpeak NG: (audio, TTS phrases,
    replica captions and utterances)."""
    from conversations.realtime.engines.registry import get_tts

    async def main():
        pipe, drv, _ = make_pipeline(mode="echo", tts=get_tts("espeak-ng"),
                                     layers={"tts": {"tts_emotion_control": emotion_control}})
        await pipe.start()
        await pipe.handle_client_message({"event_type": "conversation.echo", "properties": {
            "modality": "text", "text": text, "done": True}})
        assert await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=20_000) is not None
        shown = [e["properties"]["speech"] for _, e in drv.rec.events
                 if e["event_type"] in (ev.UTTERANCE, ev.UTTERANCE_STREAMING)]
        history = [m["content"] for m in pipe.history]
        await pipe.close()
        return drv.rec.audio(), list(pipe.tts.phrases), shown + history

    return run(main(), timeout=60)


@pytest.mark.slow
def test_echo_text_with_tags_changes_the_voice_and_never_shows_the_tags():
    tagged = f'<emotion value="sad"/>{SENTENCE}'
    audio_on, phrases_on, shown_on = _echo(tagged, emotion_control=True)
    audio_off, phrases_off, shown_off = _echo(tagged, emotion_control=False)
    assert phrases_on == phrases_off == [SENTENCE]  # the tag is never spoken
    for text in shown_on + shown_off:
        assert "<" not in text and "emotion" not in text and SENTENCE.startswith(text[:20])
    f0_on, dur_on = f0_and_voiced_s(audio_on, 16_000)
    f0_off, dur_off = f0_and_voiced_s(audio_off, 16_000)
    assert f0_on < 0.94 * f0_off and dur_on > 1.08 * dur_off, (f0_on, f0_off, dur_on, dur_off)


def test_the_llm_is_told_about_the_tags_only_when_emotion_control_is_on():
    on, _, _ = make_pipeline(layers={"tts": {"tts_emotion_control": True}}, llm=FakeLLM())
    off, _, _ = make_pipeline(llm=FakeLLM())
    assert EMOTION_NOTE in on.context.system_message() and on.tts.emotions
    assert EMOTION_NOTE not in off.context.system_message() and not off.tts.emotions
    assert on.config.tts.tts_emotion_control and not off.config.tts.tts_emotion_control
