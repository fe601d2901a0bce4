"""The rules of a pronunciation dictionary as the voice applies them (conversations/realtime/
pronounce.py): what matches, what each kind of engine is given, and how the engine's chunks are
given back the written words."""
from __future__ import annotations

import numpy as np

from conversations.realtime.engines.base import TTSChunk, WordTiming
from conversations.realtime.engines.timings import WORD_RE
from conversations.realtime.pronounce import Pronunciation, Rule, ipa_to_espeak, restore_chunk, rewrite

RULES = Pronunciation(rules=(
    Rule("OpenCVI", "open see vee eye"),
    Rule("New York", "noo york"),
    Rule("New York City", "the big apple"),
    Rule("SQL", "sequel", case_sensitive=True),
    Rule("tomato", "təˈmɑː.təʊ", type="ipa"),
    Rule("C++", "see plus plus"),
    Rule("ing", "ING", word_boundaries=False),
))


def spoken(text: str, notation: str | None = "espeak") -> str:
    return rewrite(text, RULES, notation).spoken


def test_alias_rules_match_whole_words_case_insensitively_longest_first():
    assert spoken("Try opencvi, or OPENCVI!") == "Try open see vee eye, or open see vee eye!"
    assert spoken("OpenCVIs are not OpenCVI") == "OpenCVIs are not open see vee eye"  # whole words only
    assert spoken("New York City is not New York.") == "the big apple is not noo york."
    assert spoken("SQL and sql") == "sequel and sql"  # case_sensitive
    assert spoken("I write C++ daily") == "I write see plus plus daily"  # a text ending in a symbol
    assert spoken("singing") == "sINGING"  # word_boundaries false: inside words too


def test_ipa_rules_in_each_engines_notation():
    assert ipa_to_espeak("təˈmɑː.təʊ") == "t@'mA:toU"
    assert spoken("A tomato.", "espeak") == "A [[t@'mA:toU]]."
    assert spoken("A tomato.", "ipa") == "A [[təˈmɑːtəʊ]]."  # piper's own [[IPA]] input
    ssml = rewrite("A tomato & <b>", RULES, "ssml")
    assert ssml.spoken == 'A <phoneme alphabet="ipa" ph="təˈmɑː.təʊ">tomato</phoneme> &amp; &lt;b&gt;'
    plain = rewrite("A tomato.", RULES, None)  # an engine with no phoneme input says it as written
    assert plain.spoken == "A tomato." and [r.text for r in plain.unpronounced] == ["tomato"]


def test_ipa_to_espeak_maps_stress_length_and_two_letter_units():
    assert ipa_to_espeak("ˈbaɪ.oʊ") == "'baIoU"
    assert ipa_to_espeak("ˌʌndɚˈstænd") == ",Vnd3'stand"
    assert ipa_to_espeak("ˈtʃɜːtʃ dʒʌdʒ") == "'tS3:tS dZVdZ"
    assert ipa_to_espeak("t͡ʃeɪs") == "tSeIs"  # tie bar dropped, the affricate kept


def _chunk(text: str) -> TTSChunk:
    """A chunk as an engine gives one: every written word timed, 100 ms each."""
    words = [WordTiming(m.group().strip(".,!"), 100.0 * i, 100.0 * i + 90, m.start(), len(m.group().strip(".,!")))
             for i, m in enumerate(WORD_RE.finditer(text))]
    return TTSChunk(pcm=np.zeros(10, np.int16), sample_rate=16_000, text=text, words=words)


def test_chunks_are_given_back_the_written_words():
    rw = rewrite("Welcome to OpenCVI, my friend. A tomato?", RULES, "espeak")
    assert rw.spoken == "Welcome to open see vee eye, my friend. A [[t@'mA:toU]]?"
    first, cursor = restore_chunk(_chunk("Welcome to open see vee eye, my friend."), rw, 0)
    assert first.text == "Welcome to OpenCVI, my friend."
    assert [(w.word, w.start_ms, w.end_ms) for w in first.words] == [
        ("Welcome", 0, 90), ("to", 100, 190), ("OpenCVI", 200, 590), ("my", 600, 690), ("friend", 700, 790)]
    assert [first.text[w.char_start:w.char_start + w.char_len] for w in first.words] == [
        "Welcome", "to", "OpenCVI", "my", "friend"]
    second, _ = restore_chunk(_chunk(" A [[t@'mA:toU]]?"), rw, cursor)
    assert second.text == " A tomato?"
    assert [(w.word, second.text[w.char_start:w.char_start + w.char_len]) for w in second.words] == [
        ("A", "A"), ("tomato", "tomato")]
