"""A call's knowledge base, loaded as a live session loads it (the conversation's and its PAL's
documents, by id and by tag), with the real embedding model: each spoken question reaches the
LLM with the passages that answer it, and ``conversation.rag.observability`` names them."""
from __future__ import annotations

import numpy as np
import pytest

from bench.harness import RealtimeDriver
from conversations.realtime import events as ev
from conversations.realtime.protocol import to_wire
from conversations.realtime.agent import ConversationPipeline, EngineBundle
from conversations.realtime.clock import ManualClock
from conversations.realtime.context import KNOWLEDGE_NOTE
from tests.conversations.realtime.realtime_fakes import FakeLLM, FakeSTT, FakeTTS, FakeVAD, run, words_audio
from tests.knowledge import files

pytestmark = pytest.mark.django_db


def _document(account, name: str, passages: list[tuple[str, str]], *, tags=()):
    from conversations.realtime.engines.embeddings import embedded_embedder
    from knowledge.models import Chunk, Document

    doc = Document.objects.create(account=account, document_name=name, status=Document.Status.READY, tags=list(tags),
                                  embedding_model=embedded_embedder().model_id)
    vectors = embedded_embedder().embed([f"{h}\n{t}" for h, t in passages])
    for i, ((heading, text), vector) in enumerate(zip(passages, vectors)):
        Chunk.objects.create(document=doc, ordinal=i, heading=heading, text=text, tokens=len(text.split()),
                             embedding=vector.astype(np.float32).tobytes())
    return doc


def test_a_spoken_question_reaches_the_llm_with_the_passage_that_answers_it(api, account):
    from conversations.live.config import load_session_config
    from knowledge.retrieval import load_knowledge
    from tests.factories import make_face, make_pal

    manual = _document(account, "Manual", [("Products", files.FACTS["zorblax"]), ("Refunds", files.FACTS["refund"])])
    _document(account, "Shop", [("Hours", files.FACTS["hours"])], tags=["shop"])
    _document(account, "Unrelated", [("Recipes", "Boil the pasta for nine minutes in salted water.")])
    face = make_face(account=account)
    pal = make_pal(account=account, face=face)
    pal.document_ids = [manual.id]
    pal.save()
    created = api.post("/v2/conversations", {"pal_id": pal.id, "document_tags": ["shop"],
                                             "document_retrieval_strategy": "speed"}, format="json")
    assert created.status_code == 200, created.json()
    config = load_session_config(created.json()["conversation_id"])
    assert config.knowledge.document_ids == (manual.id,) and config.knowledge.document_tags == ("shop",)
    knowledge = load_knowledge(config.knowledge)
    assert len(knowledge.index) == 3  # the Manual's two passages and the Shop's one, not the Unrelated

    async def main():
        llm = FakeLLM("It costs 417 euros.")
        engines = EngineBundle(vad=FakeVAD(), tts=FakeTTS(), stt=FakeSTT("How much does the Zorblax blender cost?"),
                               llm=llm)
        clock = ManualClock()
        events: list[dict] = []
        pipe = ConversationPipeline(config.pipeline, engines, conversation_id="ckb", event_sink=lambda e: events.append(to_wire(e, "ckb")),
                                    clock=clock, output_sample_rate=16_000, knowledge_provider=knowledge.retrieve)
        drv = RealtimeDriver(pipe, speed=0, clock=clock)
        await pipe.start()
        await drv.play(words_audio(7))
        await drv.wait_event(ev.UTTERANCE, timeout_ms=8000, where=lambda e: e["properties"]["role"] == "replica")
        await pipe.close()
        return llm, events, pipe

    llm, events, pipe = run(main())
    asked = llm.requests[-1]
    assert KNOWLEDGE_NOTE in asked[0]["content"]
    question = asked[-1]["content"]
    assert question.startswith("[knowledge] (Manual › Products)")
    assert question.endswith("\nHow much does the Zorblax blender cost?")  # the question last
    assert "417 euros" in question and "Boil the pasta" not in question
    assert pipe.history[-2] == {"role": "user", "content": "How much does the Zorblax blender cost?"}  # the transcript stays what was said
    rag = [e for e in events if e["event_type"] == ev.RAG_OBSERVABILITY]
    assert len(rag) == 1 and rag[0]["properties"]["strategy"] == "speed"
    chunks = rag[0]["properties"]["chunks"]
    assert chunks[0]["document_id"] == manual.id and chunks[0]["heading"] == "Products"
    assert rag[0]["properties"]["retrieval_ms"] < 1000


@pytest.mark.slow
def test_the_embedded_model_answers_from_the_document(account):
    """The real embedded LLM, given the passage, answers a question it could not know; without
    the document it does not know the answer."""
    from conversations.realtime.config import PipelineConfig
    from conversations.realtime.engines import registry
    from knowledge.retrieval import KnowledgeScope, load_knowledge

    manual = _document(account, "Manual", [("Products", files.FACTS["zorblax"]), ("Refunds", files.FACTS["refund"]),
                                           ("Hours", files.FACTS["hours"])])
    knowledge = load_knowledge(KnowledgeScope(account_id=account.pk, document_ids=(manual.id,)))
    # temperature 0: one answer, not a sample (at the default 0.7 it said 417 euros in 12 of 12 samples)
    config = PipelineConfig.from_layers("You are a shop assistant. Answer in one short sentence.", "",
                                        {"llm": {"temperature": 0}})

    async def main(provider):
        engines = EngineBundle(vad=FakeVAD(), tts=FakeTTS(), stt=FakeSTT("How much does the Zorblax 3000 cost?"),
                               llm=registry.get_llm(None))
        pipe = ConversationPipeline(config, engines, conversation_id="ckb2", output_sample_rate=16_000,
                                    knowledge_provider=provider)
        drv = RealtimeDriver(pipe, speed=1.0)  # real time: the model takes its real time
        await pipe.start()
        await drv.play(words_audio(7))
        found = await drv.wait_event(ev.UTTERANCE, timeout_ms=120_000,
                                     where=lambda e: e["properties"]["role"] == "replica")
        await pipe.close()
        assert found is not None, "no reply within 120 s"
        return found[1]["properties"]["speech"]

    answer = run(main(knowledge.retrieve), timeout=180)
    assert "417" in answer, answer
    without = run(main(None), timeout=180)  # the price is in the document only
    assert "417" not in without, without
