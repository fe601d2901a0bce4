from django.contrib import admin

from pronunciations.models import PronunciationDictionary


@admin.register(PronunciationDictionary)
class PronunciationDictionaryAdmin(admin.ModelAdmin):
    """Read-only here: dictionaries are written through the API, whose service validates the rules
    and unlinks a deleted dictionary from its PALs."""

    list_display = ("id", "name", "account", "created_at", "updated_at")
    search_fields = ("id", "name", "account__username")
    readonly_fields = [f.name for f in PronunciationDictionary._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
