"""Writes for the knowledge base: documents (created from a URL, a website crawl or an upload;
renamed, retagged, deleted) and the ingestion job that makes them searchable."""
from __future__ import annotations

import logging
import shutil
from collections import deque
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cvi_site.domain import ApplicationError
from cvi_site.webhooks import webhook_send
from knowledge.models import Chunk, Document
from knowledge.parsing import ChunkText, ParseError, Section, chunk_sections, detect_format, html_sections, parse

logger = logging.getLogger(__name__)

#: the largest document (a file, or each page of a site)
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
#: the embedding model of every vector a document gets (one model per deployment)
EMBED_BATCH = 32


def document_dir(document: Document) -> Path:
    return Path(settings.DATA_DIR) / "documents" / document.id


def _safe_name(name: str) -> str:
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(name or "upload").name)[:120]
    return stem.lstrip(".") or "upload"


@transaction.atomic
def document_create(*, account, document_url: str = "", upload=None, document_name: str = "",  # noqa: ANN001
                    callback_url: str = "", tags: list[str] | None = None,
                    crawl: dict[str, int] | None = None) -> Document:
    """A new document (status ``started``); its ingestion job is queued once this commits."""
    if bool(document_url) == bool(upload):
        raise ApplicationError("send either document_url or a file upload (one of them)")
    if upload is not None and upload.size > MAX_DOCUMENT_BYTES:
        raise ApplicationError(f"file_size_too_large: the file is {upload.size} bytes; the limit is "
                               f"{MAX_DOCUMENT_BYTES} bytes")
    if crawl and upload is not None:
        raise ApplicationError("crawl applies to a document_url (a website), not to an upload")
    document = Document(
        account=account, document_url=document_url, callback_url=callback_url, tags=list(tags or []),
        crawl_config=dict(crawl or {}),
        document_name=document_name or (Path(upload.name).name if upload is not None else _name_from_url(document_url)),
    )
    document.full_clean()
    document.save()
    if upload is not None:
        folder = document_dir(document)
        folder.mkdir(parents=True, exist_ok=True)
        name = _safe_name(upload.name)
        with open(folder / name, "wb") as out:
            for piece in upload.chunks():
                out.write(piece)
        document.file_name = name
        document.save(update_fields=["file_name"])
    _queue_ingest(document)
    return document


def _name_from_url(url: str) -> str:
    parts = urlsplit(url)
    tail = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return (tail or parts.netloc)[:300]


def _queue_ingest(document: Document) -> None:
    from knowledge.tasks import document_ingest

    transaction.on_commit(lambda: document_ingest.delay(document.id))


@transaction.atomic
def document_update(*, document: Document, document_name: str | None = None, tags: list[str] | None = None) -> Document:
    if document_name is not None:
        document.document_name = document_name
    if tags is not None:
        document.tags = list(tags)
    document.full_clean()
    document.save()
    return document


def document_delete(*, document: Document) -> None:
    folder = document_dir(document)
    document.delete()
    shutil.rmtree(folder, ignore_errors=True)


def check_document_ids(*, account, document_ids: list[str]) -> None:  # noqa: ANN001
    """A PAL or conversation may only name the account's own documents."""
    from knowledge.selectors import document_list

    known = set(document_list(account=account).filter(pk__in=document_ids).values_list("pk", flat=True))
    missing = [d for d in document_ids if d not in known]
    if missing:
        raise ApplicationError(f"document_ids: no document {', '.join(repr(m) for m in missing)}")


# ---------------------------------------------------------------------------- ingestion
def _progress(document_id: str, progress: int, **fields: Any) -> None:
    Document.objects.filter(pk=document_id).update(progress=progress, updated_at=timezone.now(), **fields)


def _fetch(url: str) -> tuple[bytes, str, str]:
    """(body, media type, final URL) of a URL, through the outbound rule, within the size limit."""
    import httpx

    from cvi_site import netguard

    try:
        with netguard.client(timeout=30, follow_redirects=True) as client, client.stream(
                "GET", url, headers={"User-Agent": "OpenCVI-Knowledge/1"}) as response:
            if response.status_code != 200:
                raise ParseError("invalid_file_url", f"{url} answered HTTP {response.status_code}")
            body = bytearray()
            for piece in response.iter_bytes(1 << 16):
                body += piece
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise ParseError("file_size_too_large", f"{url} is larger than {MAX_DOCUMENT_BYTES} bytes")
            return bytes(body), response.headers.get("content-type", ""), str(response.url)
    except httpx.HTTPError as exc:
        raise ParseError("invalid_file_url", f"could not fetch {url}: {exc}") from None


def _crawl(document: Document) -> tuple[list[Section], list[str]]:
    """The pages of a website from its document_url, breadth first, same host only, within
    ``crawl.depth`` links and ``crawl.max_pages`` pages."""
    depth_limit = int(document.crawl_config.get("depth", 1))
    max_pages = int(document.crawl_config.get("max_pages", 10))
    root = urlsplit(document.document_url)
    queue: deque[tuple[str, int]] = deque([(document.document_url, 0)])
    seen = {urldefrag(document.document_url)[0]}
    sections: list[Section] = []
    crawled: list[str] = []
    while queue and len(crawled) < max_pages:
        url, depth = queue.popleft()
        try:
            body, media_type, final = _fetch(url)
        except ParseError:
            if not crawled and not queue:
                raise
            continue  # a broken link on the site
        if detect_format(final, media_type, body[:512]) != "html":
            continue
        page_sections, links, _ = html_sections(body.decode("utf-8", errors="replace"))
        sections += [Section(s.headings, s.text, final) for s in page_sections]
        crawled.append(final)
        _progress(document.id, min(40, 5 + 35 * len(crawled) // max_pages))
        if depth >= depth_limit:
            continue
        for href in links:
            link = urldefrag(urljoin(final, href))[0]
            parts = urlsplit(link)
            if parts.scheme in ("http", "https") and parts.netloc == root.netloc and link not in seen:
                seen.add(link)
                queue.append((link, depth + 1))
    if not crawled:
        raise ParseError("website_processing_failed", f"no page of {document.document_url} could be read")
    return sections, crawled


def _sections(document: Document) -> tuple[list[Section], list[str]]:
    if document.file_name:
        path = document_dir(document) / document.file_name
        data = path.read_bytes()
        return parse(data, detect_format(document.file_name, "", data[:512])), []
    if document.crawl_config:
        return _crawl(document)
    body, media_type, final = _fetch(document.document_url)
    return parse(body, detect_format(final, media_type, body[:512]), source_url=final), [final]


def _embed(document_id: str, chunks: list[ChunkText]) -> tuple[np.ndarray, list[int], str]:
    from conversations.realtime.engines.embeddings import embedded_embedder

    embedder = embedded_embedder()
    inputs = [f"{c.heading}\n{c.text}" if c.heading else c.text for c in chunks]
    rows = []
    for start in range(0, len(inputs), EMBED_BATCH):
        rows.append(embedder.embed(inputs[start: start + EMBED_BATCH]))
        _progress(document_id, 50 + 45 * min(len(inputs), start + EMBED_BATCH) // len(inputs))
    tokens = [embedder.count_tokens(text) for text in inputs]
    return np.concatenate(rows), tokens, embedder.model_id


def document_ingest(*, document_id: str) -> Document | None:
    """Fetch, parse, chunk, embed and store one document (the Celery job). Never raises for bad
    input: the document ends ``ready``, or ``error`` with a documented code and a message."""
    document = Document.objects.filter(pk=document_id).first()
    if document is None:
        return None
    _progress(document_id, 5, status=Document.Status.PROCESSING, error_code="", error_message="")
    try:
        sections, crawled = _sections(document)
        _progress(document_id, 45)
        try:
            chunks = chunk_sections(sections)
        except Exception as exc:  # noqa: BLE001
            raise ParseError("chunking_failed", f"the text could not be cut into passages: {exc}") from None
        if not chunks:
            raise ParseError("file_empty", "the document has no text to read")
        try:
            vectors, tokens, model_id = _embed(document_id, chunks)
        except Exception as exc:  # noqa: BLE001
            logger.exception("embedding document %s failed", document_id)
            raise ParseError("embedding_failed", f"the passages could not be embedded: {exc}") from None
        try:
            with transaction.atomic():
                if not Document.objects.filter(pk=document_id).exists():
                    return None  # deleted meanwhile
                Chunk.objects.filter(document_id=document_id).delete()
                Chunk.objects.bulk_create([
                    Chunk(document_id=document_id, ordinal=i, heading=c.heading, source_url=c.source_url[:2000],
                          text=c.text, tokens=tokens[i], embedding=vectors[i].astype(np.float32).tobytes())
                    for i, c in enumerate(chunks)], batch_size=200)
                fields: dict[str, Any] = {"status": Document.Status.READY, "embedding_model": model_id}
                if crawled:
                    fields.update(crawled_urls=crawled[:100], last_crawled_at=timezone.now(),
                                  crawl_count=document.crawl_count + 1)
                _progress(document_id, 100, **fields)
        except ParseError:
            raise
        except Exception as exc:  # noqa: BLE001
            logger.exception("storing document %s failed", document_id)
            raise ParseError("vector_store_failed", f"the passages could not be stored: {exc}") from None
    except ParseError as exc:
        logger.info("document %s: %s (%s)", document_id, exc.message, exc.code)
        Document.objects.filter(pk=document_id).update(status=Document.Status.ERROR, error_code=exc.code,
                                                       error_message=exc.message, updated_at=timezone.now())
    document = Document.objects.filter(pk=document_id).first()
    if document is not None:
        _status_webhook(document)
    return document


def _status_webhook(document: Document) -> None:
    webhook_send(url=document.callback_url, event_type=f"document.{document.status}", subject_id=document.id,
                 account_id=document.account_id, payload={
                     "document_id": document.id, "document_name": document.document_name, "status": document.status,
                     "error_code": document.error_code or None, "error_message": document.error_message or None})


def document_fail_stale(*, minutes: int = 30) -> int:
    """Documents whose worker died mid-job end in error (the housekeeping schedule calls this)."""
    cutoff = timezone.now() - timedelta(minutes=minutes)
    return Document.objects.filter(status__in=[Document.Status.STARTED, Document.Status.PROCESSING],
                                   updated_at__lt=cutoff).update(
        status=Document.Status.ERROR, error_code="vector_store_failed",
        error_message="processing stopped unexpectedly (the worker died); upload the document again")
