"""Background jobs of the knowledge base."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="knowledge.document_ingest", acks_late=True)
def document_ingest(document_id: str) -> str | None:
    from knowledge.services import document_ingest as ingest

    document = ingest(document_id=document_id)
    return document.status if document is not None else None


@shared_task(name="knowledge.document_fail_stale")
def document_fail_stale() -> int:
    from knowledge.services import document_fail_stale as fail

    return fail()


@shared_task(name="knowledge.memories_learn", acks_late=True)
def memories_learn(conversation_id: str) -> int:
    from knowledge.memories import memories_learn as learn

    return len(learn(conversation_id=conversation_id))
