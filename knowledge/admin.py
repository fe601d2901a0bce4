from django.contrib import admin

from knowledge.models import Document, Memory


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("id", "document_name", "account", "status", "progress", "error_code", "created_at")
    list_filter = ("status",)
    search_fields = ("id", "document_name", "document_url", "account__username")
    readonly_fields = [f.name for f in Document._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # documents are added through the API or the PAL Maker, which queue their reading


@admin.register(Memory)
class MemoryAdmin(admin.ModelAdmin):
    list_display = ("store", "text", "account", "conversation_id", "created_at")
    search_fields = ("store", "text", "account__username")
    readonly_fields = ("account", "store", "text", "conversation_id", "embedding_model", "created_at")
    exclude = ("embedding",)

    def has_add_permission(self, request) -> bool:
        return False
