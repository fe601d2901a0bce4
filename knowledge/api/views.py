"""REST v2: /v2/documents (the knowledge base, hosted shapes) and (ours) /v2/memories/{store}."""
from __future__ import annotations

import json

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from cvi_site.api import AccountScopedViewSet, paginate
from cvi_site.domain import NotFoundError
from cvi_site.parsers import DepthLimitedJSONParser
from cvi_site.serializers import OutboundURLField, StrictSerializer
from knowledge import selectors, services
from knowledge.models import Document


def render_document(document: Document) -> dict:
    return {
        "document_id": document.id,
        "document_name": document.document_name,
        "document_url": document.document_url or None,
        "status": document.status,
        "progress": document.progress,
        "error_code": document.error_code or None,
        "error_message": document.error_message or None,
        "callback_url": document.callback_url or None,
        "tags": list(document.tags),
        "crawl_config": dict(document.crawl_config) or None,
        "crawled_urls": list(document.crawled_urls),
        "last_crawled_at": document.last_crawled_at.isoformat() if document.last_crawled_at else None,
        "crawl_count": document.crawl_count,
        "created_at": document.created_at.isoformat(),
        "updated_at": document.updated_at.isoformat(),
    }


class CrawlSerializer(StrictSerializer):
    depth = serializers.IntegerField(min_value=1, max_value=10, required=False, default=1,
                                     help_text="How many links deep to follow from document_url.")
    max_pages = serializers.IntegerField(min_value=1, max_value=100, required=False, default=10)


class TagsField(serializers.ListField):
    """A list of tags; in a multipart form, a JSON array or comma-separated text."""

    child = serializers.CharField(max_length=100)

    def to_internal_value(self, data):
        if isinstance(data, list) and len(data) == 1 and isinstance(data[0], str) and not data[0].startswith("["):
            data = [t.strip() for t in data[0].split(",") if t.strip()]
        elif isinstance(data, list) and len(data) == 1 and isinstance(data[0], str):
            try:
                data = json.loads(data[0])
            except ValueError:
                raise serializers.ValidationError("must be a JSON array or comma-separated tags") from None
        return super().to_internal_value(data)


class DocumentCreateSerializer(StrictSerializer):
    not_object_message = "the body must be a JSON object or a multipart form"

    document_url = OutboundURLField(required=False, max_length=2000,
                                    help_text="A file (PDF, DOCX, PPTX, TXT, Markdown, HTML, CSV, XLSX) or a web page.")
    file = serializers.FileField(required=False, help_text="(ours) A multipart upload instead of a URL.")
    document_name = serializers.CharField(required=False, allow_blank=True, max_length=300)
    callback_url = OutboundURLField(required=False, allow_blank=True, max_length=2000)
    tags = TagsField(required=False, max_length=50)
    crawl = CrawlSerializer(required=False, help_text="Crawl the website from document_url.")


class DocumentUpdateSerializer(StrictSerializer):
    document_name = serializers.CharField(required=False, max_length=300)
    tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=50)


class DocumentOutputSerializer(serializers.Serializer):
    document_id = serializers.CharField()
    document_name = serializers.CharField()
    document_url = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(Document.Status.values)
    progress = serializers.IntegerField()
    error_code = serializers.CharField(allow_null=True)
    error_message = serializers.CharField(allow_null=True)
    callback_url = serializers.CharField(allow_null=True)
    tags = serializers.ListField(child=serializers.CharField())
    crawl_config = serializers.DictField(allow_null=True)
    crawled_urls = serializers.ListField(child=serializers.CharField())
    last_crawled_at = serializers.DateTimeField(allow_null=True)
    crawl_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(many=False)
class DocumentListSerializer(serializers.Serializer):
    data = DocumentOutputSerializer(many=True)
    total_count = serializers.IntegerField()


class DocumentViewSet(AccountScopedViewSet):
    parser_classes = [DepthLimitedJSONParser, MultiPartParser]
    lookup_field = "document_id"
    lookup_value_regex = "[^/]+"
    not_found = "Document not found"

    def get_queryset(self):
        return selectors.document_list(account=self.request.user)

    @extend_schema(parameters=[OpenApiParameter("limit", int), OpenApiParameter("page", int)],
                   responses=DocumentListSerializer)
    def list(self, request):
        return paginate(request, self.get_queryset(), render_document)

    @extend_schema(request={"application/json": DocumentCreateSerializer,
                            "multipart/form-data": DocumentCreateSerializer},
                   responses={200: DocumentOutputSerializer})
    def create(self, request):
        serializer = DocumentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        v = serializer.validated_data
        document = services.document_create(
            account=request.user, document_url=v.get("document_url", ""), upload=v.get("file"),
            document_name=v.get("document_name", ""), callback_url=v.get("callback_url", ""),
            tags=v.get("tags"), crawl=dict(v["crawl"]) if "crawl" in v else None)
        return Response(render_document(document))

    @extend_schema(responses=DocumentOutputSerializer)
    def retrieve(self, request, document_id=None):
        return Response(render_document(self.get_object()))

    @extend_schema(request=DocumentUpdateSerializer, responses=DocumentOutputSerializer)
    def partial_update(self, request, document_id=None):
        serializer = DocumentUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        document = services.document_update(document=self.get_object(), **serializer.validated_data)
        return Response(render_document(document))

    @extend_schema(responses={204: None})
    def destroy(self, request, document_id=None):
        services.document_delete(document=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemoryOutputSerializer(serializers.Serializer):
    memory_id = serializers.IntegerField()
    text = serializers.CharField()
    conversation_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class MemoryListSerializer(serializers.Serializer):
    store = serializers.CharField()
    data = MemoryOutputSerializer(many=True)


class MemoryStoreView(APIView):
    """(ours) The memories kept under one ``memory_stores`` key: read them, or erase them (one
    with ``?memory_id=``, else all): a person's right to be forgotten."""

    @extend_schema(responses=MemoryListSerializer)
    def get(self, request, store: str):
        memories = selectors.memory_list(account=request.user, store=store)
        return Response({"store": store, "data": [
            {"memory_id": m.pk, "text": m.text, "conversation_id": m.conversation_id or None,
             "created_at": m.created_at.isoformat()} for m in memories]})

    @extend_schema(parameters=[OpenApiParameter("memory_id", int)], responses={204: None})
    def delete(self, request, store: str):
        memories = selectors.memory_list(account=request.user, store=store)
        memory_id = request.query_params.get("memory_id")
        if memory_id is not None:
            if not memory_id.isdigit() or not memories.filter(pk=int(memory_id)).exists():
                raise NotFoundError(f"memory_id: no memory {memory_id!r} in {store!r}")
            memories = memories.filter(pk=int(memory_id))
        memories.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
