"""The knowledge a live call can look up: the ready documents its PAL and the conversation name
(by id and by tag), loaded once when the session opens, and searched for every user turn.

A search embeds the turn's text (~5 ms) and scores every passage of those documents (exact: a
matrix product plus BM25); both run in the event loop's thread when the pipeline builds the
turn's prompt, so the passages are ready when the LLM starts, with no extra round trip."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from conversations.realtime.context import Retrieved
from knowledge.index import DEFAULT_STRATEGY, ChunkIndex, Passage, load_index

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KnowledgeScope:
    """What a call may look up (from the conversation and its PAL)."""

    account_id: int
    document_ids: tuple[str, ...] = ()
    document_tags: tuple[str, ...] = ()
    strategy: str = DEFAULT_STRATEGY

    @property
    def empty(self) -> bool:
        return not self.document_ids and not self.document_tags


def _load_chunks(document_ids: list[str]) -> tuple[list[Passage], np.ndarray]:
    from knowledge.models import Chunk

    rows = list(Chunk.objects.filter(document_id__in=document_ids).select_related("document")
                .order_by("document_id", "ordinal"))
    passages = [Passage(chunk_id=c.pk, document_id=c.document_id, document_name=c.document.document_name,
                        heading=c.heading, text=c.text, source_url=c.source_url, tokens=c.tokens) for c in rows]
    vectors = (np.frombuffer(b"".join(bytes(c.embedding) for c in rows), np.float32).reshape(len(rows), -1)
               if rows else np.zeros((0, 1), np.float32))
    return passages, vectors


class KnowledgeBase:
    def __init__(self, index: ChunkIndex, embedder, strategy: str) -> None:  # noqa: ANN001
        self.index, self.embedder, self.strategy = index, embedder, strategy

    def search(self, text: str) -> list[Passage]:
        if not text.strip() or not len(self.index):
            return []
        return self.index.search(self.embedder.embed([text])[0], text, strategy=self.strategy)

    def retrieve(self, text: str) -> Retrieved:
        """The passages for a user turn, as the text the LLM gets with it (the provider the
        conversation context calls)."""
        started = time.perf_counter()
        found = self.search(text)
        lines = [f"[knowledge] ({p.document_name}{' › ' + p.heading if p.heading else ''}) {p.text}" for p in found]
        return Retrieved(text="\n".join(lines), strategy=self.strategy, ms=(time.perf_counter() - started) * 1000,
                         passages=tuple({"document_id": p.document_id, "chunk_id": p.chunk_id, "heading": p.heading,
                                         "score": p.score, "source_url": p.source_url} for p in found))


def load_knowledge(scope: KnowledgeScope) -> KnowledgeBase | None:
    """The call's knowledge base, or None when it names no ready document. Blocking (database,
    model load): call it in a thread when the session opens."""
    if scope.empty:
        return None
    from conversations.realtime.engines.embeddings import embedded_embedder
    from knowledge.selectors import documents_for

    embedder = embedded_embedder()
    # only vectors of the model that embeds the questions (a document read by another model is
    # skipped until it is read again)
    documents = list(documents_for(account_id=scope.account_id, document_ids=list(scope.document_ids),
                                   document_tags=list(scope.document_tags)).filter(embedding_model=embedder.model_id))
    if not documents:
        logger.info("no ready document for %s", scope)
        return None
    index = load_index([(d.id, d.document_name, d.updated_at.timestamp()) for d in documents], _load_chunks)
    logger.info("knowledge base: %d documents, %d passages (%s)", len(documents), len(index), scope.strategy)
    return KnowledgeBase(index, embedder, scope.strategy)
