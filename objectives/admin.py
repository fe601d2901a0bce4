from django.contrib import admin

from objectives.models import Objective, ObjectiveSet


class ObjectiveInline(admin.TabularInline):
    model = Objective
    extra = 0
    fields = ("position", "objective_name", "objective_prompt", "confirmation_mode", "output_variables",
              "next_required_objectives", "next_conditional_objectives", "callback_url")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ObjectiveSet)
class ObjectiveSetAdmin(admin.ModelAdmin):
    """Read-only: a set is written through the API or the PAL Maker, which check it as a graph."""

    list_display = ("id", "account", "created_at", "updated_at")
    search_fields = ("id", "account__username", "objectives__objective_name")
    readonly_fields = ("id", "account", "created_at", "updated_at")
    inlines = [ObjectiveInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the API and the PAL Maker refuse to delete what a PAL uses; the admin would not
