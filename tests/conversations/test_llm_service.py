"""The box's LLM service: the real llama-server (built by `make setup`) on the real embedded
model, started the way `manage.py serve` starts it; sessions reach it through the registry."""
from __future__ import annotations

import asyncio

import pytest

from bench.livesite import free_port

pytestmark = pytest.mark.slow

PAL_A = ("You are Ada, a patient librarian in a small town. You recommend books, explain how the "
         "library card works, and keep every answer to one or two short sentences because your "
         "words are spoken aloud. Never use lists or markdown. The library opens at nine, closes "
         "at six, and is closed on Sundays. Late fees are ten cents a day.")
PAL_B = ("You are Bram, a cheerful bicycle mechanic. You help people fix flat tyres, adjust "
         "brakes and choose a bike for commuting. Answer in one or two short spoken sentences, "
         "never with lists. The shop is on Mill Street, repairs take a day, and a tune-up costs "
         "forty euros. You love talking about gears.")


@pytest.fixture(scope="module")
def llm_service(tmp_path_factory):
    from django.conf import settings

    from cvi_site.llmservice import llm_server_binary, service_url, start_llm_service

    if llm_server_binary() is None:
        pytest.fail("llama-server is missing: `make setup` builds it into .venv/bin")
    port = free_port()
    log = tmp_path_factory.mktemp("llm") / "llm-service.log"
    proc = start_llm_service(port=port, slots=2, n_ctx=2048, threads=1, threads_batch=2, log_path=log,
                             models_dir=settings.MODELS_DIR)
    yield service_url(port)
    proc.terminate()
    proc.wait(timeout=20)


def _engine(url):
    from conversations.realtime.engines import registry

    saved = registry._settings["llm_url"]
    registry.configure(llm_url=url)
    try:
        return registry.get_llm(None)
    finally:
        registry.configure(llm_url=saved)


async def _turn(llm, messages):
    text = "".join([d.text async for d in llm.stream(messages, max_tokens=40, temperature=0.0) if d.text])
    return text, dict(llm.last_timings)


def test_a_session_gets_the_shared_service_and_it_answers(llm_service):
    from conversations.realtime.engines.openai_llm import ServiceLLM

    llm = _engine(llm_service)
    assert isinstance(llm, ServiceLLM) and llm.name == "qwen2.5-coder-0.5b"

    async def scenario():
        try:
            await llm.warm_up([{"role": "system", "content": PAL_A}])
            return await _turn(llm, [{"role": "system", "content": PAL_A},
                                     {"role": "user", "content": "What time does the library open?"}])
        finally:
            await llm.aclose()

    text, timings = asyncio.run(asyncio.wait_for(scenario(), 180))
    assert "nine" in text.lower() or "9" in text
    # the warm-up left the system prompt in a slot: only the question was evaluated
    assert timings["cache_n"] >= 60 and timings["prompt_n"] < timings["cache_n"]


def test_two_conversations_each_keep_their_own_cached_prefix(llm_service):
    """A slot per live call: turns of two conversations interleave (and run at once), and each
    turn evaluates only what is new in its own conversation, however long the other's history."""
    a, b = _engine(llm_service), _engine(llm_service)
    questions_a = ["Can I borrow three books at once?", "And how much is a late fee?", "Are you open on Sunday?"]
    questions_b = ["My brakes squeak, what should I do?", "How long does a repair take?", "What does a tune-up cost?"]

    async def scenario():
        hist_a = [{"role": "system", "content": PAL_A}]
        hist_b = [{"role": "system", "content": PAL_B}]
        figures = []
        try:
            for qa, qb in zip(questions_a, questions_b):
                hist_a.append({"role": "user", "content": qa})
                hist_b.append({"role": "user", "content": qb})
                (text_a, ta), (text_b, tb) = await asyncio.gather(_turn(a, hist_a), _turn(b, hist_b))
                hist_a.append({"role": "assistant", "content": text_a})
                hist_b.append({"role": "assistant", "content": text_b})
                figures.append((ta, tb))
        finally:
            await a.aclose()
            await b.aclose()
        return figures

    figures = asyncio.run(asyncio.wait_for(scenario(), 600))
    for turn, (ta, tb) in enumerate(figures[1:], start=2):
        for name, t in (("A", ta), ("B", tb)):
            total = t["cache_n"] + t["prompt_n"]
            # the previous turns came from this conversation's own slot: only the new exchange
            # (~20-60 tokens) was evaluated, not the whole prompt again
            assert t["cache_n"] >= 80, (name, turn, t)
            assert t["prompt_n"] <= 0.5 * total, (name, turn, t)
