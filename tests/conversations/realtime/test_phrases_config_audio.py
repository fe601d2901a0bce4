"""Phrase splitting, the PAL -> PipelineConfig mapping, audio helpers and the LLM context."""
from __future__ import annotations

import numpy as np
import pytest

from conversations.realtime.audio import StreamResampler, decode_pcm16_base64, resample, to_float32_mono
from conversations.realtime.config import PipelineConfig, patience_table
from conversations.realtime.levels import INTERRUPTIBILITY, PATIENCE_WAITS
from conversations.realtime.context import ConversationContext, repeats_answered_call, tool_signature
from conversations.realtime.engines.base import ToolCall, TTSChunk, WordTiming
from conversations.realtime.output import played_text
from conversations.realtime.phrases import PhraseSplitter, clean_for_speech


def split_stream(text: str, piece: int = 3, **kw) -> list[str]:
    sp = PhraseSplitter(**kw)
    out: list[str] = []
    for i in range(0, len(text), piece):  # LLM-like small pieces
        out += sp.push(text[i:i + piece])
    return out + sp.flush()


def test_first_phrase_is_a_short_clause_then_sentences() -> None:
    assert split_stream("Sure, I can help with that. It will take a minute, maybe two. Okay?") == [
        "Sure,", "I can help with that.", "It will take a minute, maybe two.", "Okay?"]


def test_no_cut_inside_numbers_abbreviations_or_initials() -> None:
    assert split_stream("Well, Dr. Smith paid $3.50 for J. R. R. Tolkien's book. Fine.") == [
        "Well,", "Dr. Smith paid $3.50 for J. R. R. Tolkien's book.", "Fine."]


def test_unpunctuated_first_phrase_is_cut_at_a_conjunction() -> None:
    out = split_stream("I think we should go to the beach tomorrow and then we can have lunch "
                       "near the harbour")
    assert out[0] == "I think we should go to the beach tomorrow"
    assert out[1].startswith("and then")


def test_markdown_and_emoji_are_not_spoken() -> None:
    assert clean_for_speech("**Sure!** Here's `code` 😀 - done") == "Sure! Here's code - done"
    assert split_stream("# Title\n- first item\n- second item") == ["Title", "first item", "second item"]


def test_every_character_of_the_text_is_kept() -> None:
    text = "One, two. Three four five six seven eight nine ten eleven twelve thirteen. End!"
    assert " ".join(split_stream(text, piece=1)) == text


def test_config_from_layers_maps_every_option() -> None:
    cfg = PipelineConfig.from_layers(
        "You are Ana.", "Legacy context.",
        {
            "conversational_flow": {"turn_taking_patience": "high", "replica_interruptibility": "low",
                                    "turn_detection_model": "sparrow-1"},
            "stt": {"stt_engine": "whisper-base", "hotwords": ["OpenCVI", "Tavus"],
                    "participant_pause_sensitivity": "superlow", "smart_turn_detection": False},
            "llm": {"model": "qwen", "base_url": "http://x/v1/", "api_key": "sk-secret",
                    "headers": {"X-A": "1"}, "extra_body": {"top_k": 3}, "default_query": {"v": "1"},
                    "speculative_inference": False,
                    "tools": [{"type": "function", "function": {"name": "f"}}]},
            "tts": {"tts_engine": "espeak-ng", "external_voice_id": "en-us+f3",
                    "voice_settings": {"speed": 1.2}},
            "perception": {"perception_model": "off"},
        },
        conversational_context="Today is Monday.", custom_greeting="Hi!", language="spanish",
        pipeline_mode="echo")
    assert cfg.pipeline_mode == "echo" and cfg.language_code == "es" and cfg.tts_language == "es"
    assert cfg.flow.waits == PATIENCE_WAITS["high"]  # the newer field wins over the legacy one
    assert cfg.flow.interrupt_policy == INTERRUPTIBILITY["low"]
    assert cfg.flow.smart_turn_detection is False and cfg.flow.turn_detection_model == "smart-turn"
    assert cfg.stt.hotwords == "OpenCVI, Tavus" and cfg.stt.stt_engine == "whisper-base"
    assert cfg.llm.base_url == "http://x/v1" and cfg.llm.headers["X-A"] == "1"
    assert cfg.llm.speculative_inference is False and cfg.llm.tool_schemas()[0]["function"]["name"] == "f"
    assert "sk-secret" not in repr(cfg)
    assert cfg.tts.voice_id == "en-us+f3" and cfg.tts.speed == 1.2
    assert cfg.layers["perception"]["perception_model"] == "off"
    with pytest.raises(TypeError):
        cfg.layers["llm"]["model"] = "other"  # read-only
    assert PipelineConfig.from_layers("p", "", {}) == PipelineConfig.from_layers("p", "", None)


def test_config_defaults_and_legacy_sensitivities() -> None:
    cfg = PipelineConfig.from_layers("p", "", {})
    assert cfg.llm.speculative_inference is True and cfg.pipeline_mode == "full"
    assert cfg.flow.waits == PATIENCE_WAITS["medium"] and cfg.language_code == "en"
    legacy = PipelineConfig.from_layers("p", "", {"stt": {"participant_pause_sensitivity": "high",
                                                           "participant_interrupt_sensitivity": "high"}})
    assert legacy.flow.waits == PATIENCE_WAITS["low"]
    assert legacy.flow.interrupt_policy == INTERRUPTIBILITY["high"]
    assert PipelineConfig.from_layers("p", "", {}, language="multilingual").language_code is None
    assert {r["level"] for r in patience_table()} >= {"low", "medium", "high", "superlow"}


@pytest.mark.parametrize("layers, field", [
    ({"conversational_flow": {"turn_taking_patience": "eager"}}, "turn_taking_patience"),
    ({"stt": {"participant_interrupt_sensitivity": 3}}, "participant_interrupt_sensitivity"),
    ({"llm": {"tools": "nope"}}, "llm.tools"),
    ({"llm": {"speculative_inference": "maybe"}}, "speculative_inference"),
    ({"tts": {"voice_settings": {"speed": 9}}}, "speed"),
    ({"llm": "x"}, "layers.llm"),
])
def test_config_rejects_bad_values(layers: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        PipelineConfig.from_layers("p", "", layers)


def test_streaming_resampler_matches_one_shot_and_keeps_length() -> None:
    x = np.sin(2 * np.pi * 300 * np.arange(48_000) / 48_000).astype(np.float32)
    rs = StreamResampler(48_000, 16_000)
    streamed = np.concatenate([rs.process(x[i:i + 960]) for i in range(0, len(x), 960)])
    assert abs(len(streamed) - 16_000) <= 1
    d = rs.delay_samples
    ref = np.sin(2 * np.pi * 300 * (np.arange(len(streamed)) * 3 - d) / 48_000)
    assert np.abs(streamed[20:] - ref[20:]).max() < 0.01
    # a tone above the new Nyquist (8 kHz) does not fold back into the speech band
    hi = np.sin(2 * np.pi * 11_000 * np.arange(48_000) / 48_000).astype(np.float32)
    folded = StreamResampler(48_000, 16_000).process(hi)
    assert np.sqrt(np.mean(folded[100:] ** 2)) < 0.02
    up = resample(x[:22_050], 22_050, 48_000)
    assert len(up) == 48_000


def test_audio_format_conversions() -> None:
    inter = np.array([1000, 3000, -1000, -3000], np.int16)  # stereo interleaved
    assert np.allclose(to_float32_mono(inter, channels=2) * 32768, [2000, -2000])
    planar = np.array([[0.5, 0.5, 0.5], [0.1, 0.3, 0.5]], np.float32)
    assert np.allclose(to_float32_mono(planar, channels=2), [0.3, 0.4, 0.5])
    packed_row = inter.reshape(1, -1)  # av's packed stereo frame: one interleaved row
    assert np.allclose(to_float32_mono(packed_row, channels=2) * 32768, [2000, -2000])
    assert np.array_equal(decode_pcm16_base64("AQACAA=="), np.array([1, 2], np.int16))


def test_played_text_keeps_whole_words_whose_middle_was_played() -> None:
    chunk = TTSChunk(pcm=np.zeros(16_000, np.int16), sample_rate=16_000, text="Hello there, my friend.",
                     words=[WordTiming("Hello", 0, 300, 0, 5), WordTiming("there", 300, 600, 6, 5),
                            WordTiming("my", 650, 750, 13, 2), WordTiming("friend", 750, 1000, 16, 6)])
    assert played_text(chunk, 100) == ""
    assert played_text(chunk, 460) == "Hello there,"
    assert played_text(chunk, 1000) == "Hello there, my friend."
    untimed = TTSChunk(pcm=np.zeros(16_000, np.int16), sample_rate=16_000, text="a b c d")
    assert played_text(untimed, 500) == "a b"


def test_context_history_and_prompt() -> None:
    ctx = ConversationContext(system_prompt="S", context="C", conversational_context="X")
    ctx.add_user(1, "hello")
    assert ctx.messages((2, "pending"))[-1] == {"role": "user", "content": "hello pending"}
    ctx.add_assistant(1, "hi there, how are you")
    ctx.set_played(1, "hi there,")
    assert ctx.history[-1] == {"role": "assistant", "content": "hi there,"}
    ctx.add_user(2, "tell me")
    ctx.add_assistant(2, "")
    ctx.set_played(2, "")  # nothing heard: no empty assistant message
    assert [m["role"] for m in ctx.history] == ["user", "assistant", "user"]
    ctx.add_assistant(3, "checking", [ToolCall("t1", "f", "{}"), ToolCall("t2", "g", "{}")])
    ctx.add_tool_result("t1", {"ok": True})
    assert ctx.unanswered_tool_calls("t1") == ["t2"]
    ctx.add_tool_result("t2", "fine", "error")
    assert ctx.unanswered_tool_calls("t1") == [] and ctx.history[-1]["content"] == "[error] fine"
    ctx.overwrite("Y")
    ctx.append("Z")
    assert ctx.messages()[0] == {"role": "system", "content": "S\n\nC\n\nY\nZ"}


def test_repeated_tool_calls_are_recognised() -> None:
    answered = {tool_signature(ToolCall("a", "get_weather", '{"city": "Paris"}'))}
    assert repeats_answered_call(ToolCall("b", "get_weather", '{ "city":"Paris" }'), answered)
    assert repeats_answered_call(ToolCall("c", "get_weather", '{"city": "Paris", "temp": 23}'), answered)
    assert not repeats_answered_call(ToolCall("d", "get_weather", '{"city": "London"}'), answered)
    assert not repeats_answered_call(ToolCall("e", "get_time", '{"city": "Paris"}'), answered)


def test_a_long_history_is_trimmed_in_steps_that_keep_the_prompt_prefix() -> None:
    from conversations.realtime.context import ConversationContext

    ctx = ConversationContext(system_prompt="You are a test.", max_messages=10)
    starts = []
    for i in range(1, 30):
        ctx.add_user(i, f"question {i}")
        ctx.add_assistant(i, f"answer {i}")
        msgs = ctx.messages()
        assert msgs[0]["role"] == "system" and len(msgs) - 1 <= 10
        assert msgs[-1]["content"] == f"answer {i}"
        starts.append(msgs[1]["content"])
    # the oldest kept message changes once per (about) half a window, not every turn, and
    # the history still opens with a user turn
    changes = sum(1 for a, b in zip(starts, starts[1:]) if a != b)
    assert 0 < changes <= (29 * 2 - 10) // 4
    assert all(s.startswith("question") for s in starts)


@pytest.mark.parametrize("text, spoken", [
    ('He said "hello" to me.', "He said hello to me."),
    ("A joke: “Why did the computer sneeze?” It had a virus!", "A joke: Why did the computer sneeze? It had a virus!"),
    ("See https://example.com/a?b=1 for more.", "See the link for more."),
    ("Read [the docs](https://x.y/z) now.", "Read the docs now."),
    ("It's 'quoted' here, isn't it?", "It's quoted here, isn't it?"),
])
def test_speech_is_cleaned_of_quotes_and_urls(text: str, spoken: str) -> None:
    assert clean_for_speech(text) == spoken
