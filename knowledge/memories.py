"""Memories: short facts about a person, learnt at the end of a call and recalled in the next
calls that name the same store (``memory_stores`` on a conversation).

After a call with a memory store ends, the box's language model reads what the person said and
writes the facts worth keeping, one per line; each is embedded and stored unless the store
already holds the same fact (cosine ≥ ``SAME_FACT``). A later call with that store starts with
the facts in its context. ``GET``/``DELETE /v2/memories/{store}`` read and erase them."""
from __future__ import annotations

import asyncio
import logging
import re

import numpy as np

from knowledge.models import Memory

logger = logging.getLogger(__name__)

#: facts recalled into a call (the most recent of the store)
RECALL_LIMIT = 20
#: two facts this close are the same fact said again
SAME_FACT = 0.9
MAX_FACTS_PER_CALL = 8
EXTRACT_PROMPT = (
    "Below is what a person said during a video call with an assistant. Write down the facts about the person "
    "that are worth remembering for the next call: their name, where they live, their work, family, pets, "
    "preferences, plans and problems. One short sentence per line, starting with \"- \", in the third person "
    "(\"The person ...\"). Only facts the person stated about themselves; nothing about the assistant. If there "
    "is nothing worth remembering, write \"- none\"."
)
_LINE = re.compile(r"^\s*[-*•]\s*(.+?)\s*$")


def parse_facts(text: str) -> list[str]:
    facts = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        fact = match.group(1).strip().strip('"')
        if fact.lower().rstrip(".") in ("none", "nothing", "n/a") or len(fact.split()) < 3 or len(fact) > 300:
            continue  # "- Lisbon." is not a fact about anyone
        facts.append(fact if fact.endswith((".", "!", "?")) else fact + ".")
    return list(dict.fromkeys(facts))[:MAX_FACTS_PER_CALL]


async def _ask(llm, user_lines: list[str]) -> str:  # noqa: ANN001 - a LanguageModel
    messages = [{"role": "system", "content": EXTRACT_PROMPT},
                {"role": "user", "content": "\n".join(f"Person: {line}" for line in user_lines)}]
    out = []
    async for delta in llm.stream(messages, max_tokens=200, temperature=0.0):
        if delta.text:
            out.append(delta.text)
    return "".join(out)


def extract_facts(user_lines: list[str]) -> list[str]:
    """The facts in what a person said, by the box's language model (blocking)."""
    from conversations.realtime.config import LLMConfig
    from conversations.realtime.frontdoor import build_llm

    if not any(line.strip() for line in user_lines):
        return []
    llm = build_llm(LLMConfig())

    async def run() -> str:
        try:
            return await _ask(llm, user_lines)
        finally:
            await llm.aclose()

    return parse_facts(asyncio.run(run()))


def memories_learn(*, conversation_id: str) -> list[Memory]:
    """Learn the facts of an ended call into each of its memory stores (the Celery job)."""
    from conversations.models import Conversation, Utterance
    from conversations.realtime.engines.embeddings import embedded_embedder

    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None or not conversation.memory_stores:
        return []
    said = list(conversation.utterances.filter(role=Utterance.Role.USER).order_by("seconds_from_start", "id")
                .values_list("content", flat=True))
    facts = extract_facts(said)
    if not facts:
        return []
    embedder = embedded_embedder()
    vectors = embedder.embed(facts)
    created: list[Memory] = []
    for store in conversation.memory_stores:
        existing = list(Memory.objects.filter(account_id=conversation.account_id, store=store,
                                              embedding_model=embedder.model_id))
        known = (np.frombuffer(b"".join(bytes(m.embedding) for m in existing), np.float32).reshape(len(existing), -1)
                 if existing else np.zeros((0, vectors.shape[1]), np.float32))
        for fact, vector in zip(facts, vectors):
            if len(known) and float((known @ vector).max()) >= SAME_FACT:
                continue
            created.append(Memory.objects.create(
                account_id=conversation.account_id, store=store, text=fact[:500], conversation_id=conversation.pk,
                embedding=vector.astype(np.float32).tobytes(), embedding_model=embedder.model_id))
            known = np.vstack([known, vector[None, :]])
    logger.info("conversation %s: %d new memories in %s", conversation_id, len(created), conversation.memory_stores)
    return created


def recall(*, account_id: int, stores: list[str]) -> list[str]:
    """The facts a new call with these stores starts with (most recent last)."""
    if not stores:
        return []
    texts = (Memory.objects.filter(account_id=account_id, store__in=stores).order_by("-created_at", "-id")
             .values_list("text", flat=True)[:RECALL_LIMIT])
    return list(dict.fromkeys(reversed(list(texts))))


def recall_context(facts: list[str]) -> str:
    if not facts:
        return ""
    return "What you remember about this person from earlier calls:\n" + "\n".join(f"- {f}" for f in facts)
