from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin

from cvi_site import services
from cvi_site.models import Account, ApiKey, WebhookDelivery


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # keys are created through the action below, so the secret can be shown once


@admin.register(Account)
class AccountAdmin(UserAdmin):
    list_display = ("username", "email", "is_staff", "is_active", "max_concurrent_conversations", "date_joined")
    fieldsets = UserAdmin.fieldsets + (
        ("OpenCVI", {"fields": ("max_concurrent_conversations", "allowed_embed_origins")}),
    )
    inlines = [ApiKeyInline]
    actions = ["create_api_key"]

    @admin.action(description="Create an API key (shown once)")
    def create_api_key(self, request, queryset):
        for account in queryset:
            created = services.api_key_create(account=account, name="admin")
            self.message_user(
                request,
                f"New key for {account}: {created.raw_key} — copy it now, it is not shown again.",
                messages.WARNING,
            )


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "account", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("prefix", "name", "account__username")
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at", "revoked_at", "account")
    fields = ("account", "name", "prefix", "key_hash", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        for key in queryset:
            services.api_key_revoke(api_key=key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("event_type", "subject_id", "url", "status", "tries", "created_at", "account")
    list_filter = ("status", "event_type")
    search_fields = ("subject_id", "url", "account__username")
    readonly_fields = ("account", "subject_id", "event_type", "url", "payload", "status", "next_attempt_at",
                       "attempts", "send_round", "created_at")
    actions = ["resend"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="tries")
    def tries(self, obj: WebhookDelivery) -> int:
        return len(obj.attempts)

    @admin.action(description="Send the selected webhooks again")
    def resend(self, request, queryset):
        from cvi_site.webhooks import webhook_resend

        for delivery in queryset:
            webhook_resend(delivery=delivery)
        self.message_user(request, f"Sending {queryset.count()} webhook(s) again.")
