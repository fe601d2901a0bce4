"""llama.cpp in-process (Qwen2.5-Coder-0.5B-Instruct): streaming, cancellation, tools, cache."""
from __future__ import annotations

import asyncio
import json
import time

import pytest
from engine_helpers import run

from conversations.realtime.engines.base import LLMDelta, ToolCall
from conversations.realtime.engines.llama_local import LlamaCppLLM, _Job, _StateCache
from conversations.realtime.engines.toolcalls import ToolCallStreamParser, parse_tool_call_json

HOTEL = ("You are Anna, the receptionist of the Grand Hotel in Lisbon. Answer in one short "
         "spoken sentence. Breakfast is served from 7 to 10:30. Check-out is until noon.")
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


async def collect(llm, messages, **kw) -> list[LLMDelta]:
    return [d async for d in llm.stream(messages, **kw)]


async def wait_idle(llm: LlamaCppLLM, timeout: float = 5.0) -> float:
    start = time.perf_counter()
    while llm.busy:
        if time.perf_counter() - start > timeout:
            raise AssertionError("the model is still busy")
        await asyncio.sleep(0.005)
    return time.perf_counter() - start


@pytest.mark.slow
def test_streams_a_short_coherent_reply(llm):
    deltas = run(collect(llm, [{"role": "system", "content": HOTEL},
                               {"role": "user", "content": "Hi! When is breakfast?"}],
                         max_tokens=48, temperature=0.0))
    text = "".join(d.text for d in deltas)
    assert len(deltas) > 3 and all(d.tool_call is None for d in deltas)
    assert "7" in text and ("10:30" in text or "10.30" in text), text
    assert "<|im_end|>" not in text and len(text) < 300


@pytest.mark.slow
def test_cancel_stops_promptly_and_the_model_is_usable_right_after(llm):
    story = [{"role": "user", "content": "Tell me a very long story about a dragon and a knight."}]

    async def close_early():
        agen = llm.stream(story, max_tokens=256)
        got = [await agen.__anext__() for _ in range(3)]
        await agen.aclose()
        idle_after = await wait_idle(llm)
        return got, idle_after

    got, idle_after = run(close_early())
    assert len(got) == 3
    assert idle_after < 5.0  # bounded by wait_idle; the worker stops between two tokens

    async def cancel_task():
        seen = asyncio.Event()

        async def consume():
            async for _ in llm.stream(story, max_tokens=256):
                seen.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(seen.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_idle(llm)
        # usable right after: a full, normal reply
        return await collect(llm, [{"role": "user", "content": "What is the capital of France? One word."}],
                             max_tokens=16, temperature=0.0)

    reply = "".join(d.text for d in run(cancel_task()))
    assert "Paris" in reply


@pytest.mark.slow
def test_a_tool_call_is_parsed_not_spoken(llm):
    deltas = run(collect(llm, [{"role": "system", "content": "You are a helpful assistant."},
                               {"role": "user", "content": "What's the weather like in Paris right now?"}],
                         tools=[WEATHER_TOOL], max_tokens=64, temperature=0.0))
    calls = [d.tool_call for d in deltas if d.tool_call]
    assert len(calls) == 1
    call = calls[0]
    assert isinstance(call, ToolCall) and call.name == "get_weather" and call.id.startswith("call_")
    assert json.loads(call.arguments) == {"city": "Paris"}
    text = "".join(d.text for d in deltas)
    assert "{" not in text and "tool_call" not in text


@pytest.mark.slow
def test_history_with_a_tool_result_renders_and_answers(llm):
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What's the weather like in Paris right now?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature_c\": 21, \"sky\": \"sunny\"}"},
    ]
    prompt = llm.render_prompt(messages, [WEATHER_TOOL])
    # the OpenAI-style JSON-string arguments are rendered as an object, the result as a response
    assert '{"name": "get_weather", "arguments": {"city": "Paris"}}' in prompt
    assert "<tool_response>\n{\"temperature_c\": 21" in prompt
    deltas = run(collect(llm, messages, tools=[WEATHER_TOOL], max_tokens=24, temperature=0.0))
    assert deltas  # a 0.5B model may repeat the call or answer; either way the stream is well-formed


@pytest.mark.slow
def test_prefix_state_is_restored_exactly_between_sessions(llm):
    """Session A, session B, session A again: A's prefix comes back from the state cache and
    the greedy answer is the same as when it was still in the KV cache."""
    a = [{"role": "system", "content": HOTEL}, {"role": "user", "content": "When is check-out?"}]
    b = [{"role": "system", "content": "You are a pirate. One sentence."}, {"role": "user", "content": "Who are you?"}]

    async def scenario():
        kw = {"max_tokens": 12, "temperature": 0.0}
        first = await collect(llm, a, **kw)
        await collect(llm, b, **kw)
        restored = await collect(llm, a, **kw)  # from the saved state
        again = await collect(llm, a, **kw)  # from the live KV cache
        return first, restored, again

    first, restored, again = run(scenario(), timeout=120)
    text = lambda ds: "".join(d.text for d in ds)  # noqa: E731
    assert text(restored) == text(again) == text(first)
    assert len(llm._cache) >= 1


@pytest.mark.slow
def test_concurrent_callers_are_served_one_after_the_other(llm):
    async def both():
        return await asyncio.gather(
            collect(llm, [{"role": "user", "content": "Say hello in French. One word."}], max_tokens=8, temperature=0.0),
            collect(llm, [{"role": "user", "content": "Say hello in Spanish. One word."}], max_tokens=8, temperature=0.0))

    fr, es = run(both())
    assert "bonjour" in "".join(d.text for d in fr).lower()
    assert "hola" in "".join(d.text for d in es).lower()


@pytest.mark.slow
def test_a_prompt_too_long_drops_the_oldest_turns(llm):
    history = []
    for i in range(120):
        history += [{"role": "user", "content": f"Message number {i}: " + "blah " * 30},
                    {"role": "assistant", "content": "Okay."}]
    messages = [{"role": "system", "content": HOTEL}, *history, {"role": "user", "content": "Last question?"}]
    job = _Job(messages=messages, tools=None, max_tokens=256, temperature=0.7, emit=lambda _x: None)
    tokens = llm._tokens(job)
    assert len(tokens) <= llm.n_ctx - 256
    text = llm._llm.detokenize(tokens).decode()
    assert text.startswith("<|im_start|>system\nYou are Anna") or "You are Anna" in text[:200]
    assert "Last question?" in text and "Message number 0:" not in text


def test_stream_parser_handles_tags_bare_json_and_plain_text():
    def parse(text: str, names=("get_weather",), step: int = 3) -> list[LLMDelta]:
        p = ToolCallStreamParser(names)
        out: list[LLMDelta] = []
        for i in range(0, len(text), step):
            out += p.feed(text[i:i + step])
        return out + p.flush()

    def split(deltas):
        return "".join(d.text for d in deltas), [d.tool_call for d in deltas if d.tool_call]

    text, calls = split(parse('  <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\nSure!'))
    assert text == "Sure!" and [c.name for c in calls] == ["get_weather"]
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    text, calls = split(parse('{"name": "get_weather", "arguments": {"city": "Oslo \\"x\\" }"}}'))
    assert text == "" and json.loads(calls[0].arguments) == {"city": 'Oslo "x" }'}
    text, calls = split(parse('Let me check. <tool_call>{"name": "get_weather", "arguments": {}}</tool_call>'))
    assert text == "Let me check. " and len(calls) == 1
    # braces and "<" in ordinary text stay text; an unknown function in bare JSON is text
    text, calls = split(parse("{curly} braces are fun < tool and <tool"))
    assert text == "{curly} braces are fun < tool and <tool" and not calls
    text, calls = split(parse('{"name": "other", "arguments": {}} hmm'))
    assert not calls and text.startswith('{"name": "other"')
    # a tag cut short by max_tokens: kept if its JSON is whole, dropped (never spoken) if not
    assert split(parse('<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}'))[1]
    assert split(parse('<tool_call>{"name": "get_wea')) == ("", [])
    # without tools every character is text, byte for byte
    assert split(parse("Hello there, how are you?", names=()))[0] == "Hello there, how are you?"


def test_parse_tool_call_json():
    call = parse_tool_call_json('{"name": "f", "arguments": "{\\"a\\": 1}"}')
    assert call is not None and call.arguments == '{"a": 1}'
    assert parse_tool_call_json("not json") is None
    assert parse_tool_call_json('{"arguments": {}}') is None


def test_state_cache_is_bounded_and_supersedes_prefixes():
    cache = _StateCache(capacity_bytes=100)
    cache.put((1, 2, 3), b"x" * 40)
    cache.put((1, 2, 3, 4, 5), b"y" * 40)  # same session, next turn: replaces (1, 2, 3)
    assert len(cache) == 1
    cache.put((9, 9), b"z" * 40)
    cache.put((7, 7), b"w" * 40)  # over capacity: the least recently used goes
    assert len(cache) == 2
    found = cache.longest_prefix([9, 9, 1])
    assert found is not None and found[0] == (9, 9)
    assert cache.longest_prefix([5, 5]) is None
    cache.put((8,), b"q" * 1000)  # larger than the whole cache: not kept
    assert cache.longest_prefix([8]) is None


@pytest.mark.slow
def test_warm_up_keeps_the_system_prompt_ready(llm):
    """warm_up() evaluates a session's system prompt ahead of the first turn; after other
    sessions used the model, the first turn's answer is the same as without the warm-up."""
    system = {"role": "system", "content": HOTEL + " Our spa opens at 9."}
    question = {"role": "user", "content": "When does the spa open?"}

    async def scenario():
        await llm.warm_up([system])
        await collect(llm, [{"role": "user", "content": "Hi"}], max_tokens=4)  # another session
        n_saved = len(llm._cache)
        warm = await collect(llm, [system, question], max_tokens=16, temperature=0.0)
        plain = await collect(llm, [system, question], max_tokens=16, temperature=0.0)
        return n_saved, warm, plain

    n_saved, warm, plain = run(scenario(), timeout=120)
    text = lambda ds: "".join(d.text for d in ds)  # noqa: E731
    assert n_saved >= 1
    assert text(warm) == text(plain) and "9" in text(warm)
