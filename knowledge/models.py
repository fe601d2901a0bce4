"""The knowledge base: documents an account gives its PALs (fetched, parsed, cut into chunks and
embedded by a background job) and the memories a conversation keeps about a person.

Vectors are stored in the database beside their text (``float32`` bytes, unit length), so every
process and every database sees the same data; ``knowledge.index`` searches them."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from cvi_site.ids import new_id


def document_id() -> str:
    return new_id("d")


class Document(models.Model):
    class Status(models.TextChoices):
        STARTED = "started"
        PROCESSING = "processing"
        READY = "ready"
        ERROR = "error"

    id = models.CharField(primary_key=True, max_length=32, default=document_id, editable=False)
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="documents")
    document_name = models.CharField(max_length=300, blank=True)
    document_url = models.URLField(max_length=2000, blank=True)
    #: the uploaded file (under DATA_DIR/documents/<id>/), when the document came as an upload
    file_name = models.CharField(max_length=300, blank=True)
    callback_url = models.URLField(max_length=2000, blank=True)
    tags = models.JSONField(default=list, blank=True)
    #: {"depth": 1–10, "max_pages": 1–100} for a website; empty for one page or a file
    crawl_config = models.JSONField(default=dict, blank=True)
    crawled_urls = models.JSONField(default=list, blank=True)
    last_crawled_at = models.DateTimeField(null=True, blank=True)
    crawl_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.STARTED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    #: the embedding model of its chunks' vectors
    embedding_model = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["account", "status"])]

    def __str__(self) -> str:
        return self.document_name or self.id


class Chunk(models.Model):
    """One passage of a document, cut along its structure, with its embedding."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    #: the headings above the passage ("Pricing › Refunds"), and the page it came from
    heading = models.CharField(max_length=500, blank=True)
    source_url = models.URLField(max_length=2000, blank=True)
    text = models.TextField()
    tokens = models.PositiveIntegerField(default=0)
    embedding = models.BinaryField()

    class Meta:
        ordering = ["document", "ordinal"]
        constraints = [models.UniqueConstraint(fields=["document", "ordinal"], name="chunk_order")]


class Memory(models.Model):
    """A short fact about a person, kept under a stable key of the account's choosing
    (``memory_stores`` on a conversation) and recalled in later calls with that key."""

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memories")
    store = models.CharField(max_length=200, db_index=True)
    text = models.CharField(max_length=500)
    conversation_id = models.CharField(max_length=32, blank=True, help_text="The call it was learnt in.")
    embedding = models.BinaryField()
    embedding_model = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["account", "store"])]

    def __str__(self) -> str:
        return f"{self.store}: {self.text}"
