"""Memories: facts learnt from what a person said, by the box's real language model, stored per
store without repeats, recalled into the next call's context, listed and erased over the API."""
from __future__ import annotations

import pytest

from knowledge.memories import parse_facts, recall_context

pytestmark = pytest.mark.django_db


def test_fact_lines_are_read_and_none_means_nothing():
    text = "Here are the facts:\n- The person is called Ana.\n* Ana lives in Lisbon\n- none\n- Lisbon.\nnot a fact line"
    assert parse_facts(text) == ["The person is called Ana.", "Ana lives in Lisbon."]
    assert parse_facts("- none") == []


def _ended_call(account, face, pal, said: list[str], stores=("customer-42",)):
    from conversations.models import Conversation, Utterance
    from django.utils import timezone

    conv = Conversation.objects.create(account=account, face=face, pal=pal, memory_stores=list(stores),
                                       started_at=timezone.now(), status=Conversation.Status.ENDED)
    for i, text in enumerate(said):
        Utterance.objects.create(conversation=conv, role=Utterance.Role.USER, content=text, seconds_from_start=i * 5)
    return conv


@pytest.mark.slow
def test_a_call_teaches_facts_and_the_next_call_starts_with_them(api, account, monkeypatch):
    from conversations.live.config import load_session_config
    from knowledge.memories import memories_learn
    from tests.factories import make_face, make_pal

    face = make_face(account=account)
    pal = make_pal(account=account, face=face)
    first = _ended_call(account, face, pal, ["Hi, my name is Ana and I live in Lisbon.",
                                            "I have two cats, and I am planning a trip to Japan in May."])
    learnt = memories_learn(conversation_id=first.pk)
    texts = " ".join(m.text for m in learnt)
    assert "Ana" in texts and "Lisbon" in texts, texts
    # the same facts learnt again are not stored twice
    assert memories_learn(conversation_id=first.pk) == []

    stored = api.get("/v2/memories/customer-42").json()
    assert stored["store"] == "customer-42" and len(stored["data"]) == len(learnt)

    r = api.post("/v2/conversations", {"pal_id": pal.id, "face_id": face.id, "memory_stores": ["customer-42"]},
                 format="json")
    config = load_session_config(r.json()["conversation_id"])
    assert "What you remember about this person" in config.pipeline.conversational_context
    assert "Lisbon" in config.pipeline.conversational_context

    one = stored["data"][0]["memory_id"]
    assert api.delete(f"/v2/memories/customer-42?memory_id={one}").status_code == 204
    assert len(api.get("/v2/memories/customer-42").json()["data"]) == len(learnt) - 1
    assert api.delete("/v2/memories/customer-42?memory_id=999999").status_code == 404
    assert api.delete("/v2/memories/customer-42").status_code == 204
    assert api.get("/v2/memories/customer-42").json()["data"] == []


def test_another_account_sees_and_erases_nothing(api, other_api, account):
    from knowledge.models import Memory

    Memory.objects.create(account=account, store="s1", text="The person likes tea.", embedding=b"\0" * 8,
                          embedding_model="m")
    assert other_api.get("/v2/memories/s1").json()["data"] == []
    assert other_api.delete("/v2/memories/s1").status_code == 204
    assert Memory.objects.filter(store="s1").count() == 1


def test_recall_context_reads_as_a_list():
    assert recall_context([]) == ""
    assert recall_context(["The person is called Ana."]).endswith("\n- The person is called Ana.")
