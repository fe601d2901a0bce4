from django.contrib import admin

from guardrails.models import Guardrail, GuardrailSet


@admin.register(Guardrail)
class GuardrailAdmin(admin.ModelAdmin):
    """Read-only: guardrails are written through the API or the PAL Maker, which check them."""

    list_display = ("guardrail_name", "uuid", "guardrail_set", "modality", "app_message", "account", "created_at")
    list_filter = ("modality",)
    search_fields = ("guardrail_name", "uuid", "guardrail_set__id", "account__username")
    readonly_fields = [f.name for f in Guardrail._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the API and the PAL Maker refuse to delete what a PAL uses; the admin would not


@admin.register(GuardrailSet)
class GuardrailSetAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "account", "created_at")
    search_fields = ("id", "name", "account__username")
    readonly_fields = ("id", "name", "account", "created_at", "updated_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the API and the PAL Maker refuse to delete what a PAL uses; the admin would not
