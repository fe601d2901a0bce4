"""PALs in the Django admin. Saving goes through ``pals.services`` (the form's clean() checks the
values with the API's ``pal_input`` and calls the service, inside the admin's transaction), so the
admin enforces exactly the rules of the REST API and the PAL Maker. Secrets in the layers are shown masked; sending the masked value
back keeps the stored secret (the service's rule)."""
from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.html import format_html

from cvi_site.domain import ApplicationError
from cvi_site.models import Account
from pals import services
from pals.api.serializers import pal_input
from pals.models import Pal
from pals.service_errors import service_error_items
from pals.stored_layers import mask_secrets

SERVICE_ERRORS = (ApplicationError, DjangoValidationError)
JSON_FIELDS = ("layers", "document_ids", "document_tags", "guardrail_ids")


class PalAdminForm(forms.ModelForm):
    account = forms.ModelChoiceField(Account.objects.all(), required=False,
                                     help_text="Owner. Empty: a stock PAL shared by every account.")
    pal_name = forms.CharField(max_length=200, required=False)
    system_prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), required=False)
    context = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    greeting = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    pipeline_mode = forms.ChoiceField(choices=Pal.PipelineMode.choices, initial=Pal.PipelineMode.FULL)
    default_face_id = forms.CharField(max_length=32, required=False, label="Default face id")
    objectives_id = forms.CharField(max_length=32, required=False)
    guardrails_id = forms.CharField(max_length=32, required=False, label="Guardrails id (legacy set)")
    layers = forms.CharField(widget=forms.Textarea(attrs={"rows": 16, "style": "font-family: monospace"}), required=False,
                             help_text="JSON. API keys are shown masked (****abcd); leave them so to keep them.")
    document_ids = forms.CharField(required=False, help_text="JSON list")
    document_tags = forms.CharField(required=False, help_text="JSON list")
    guardrail_ids = forms.CharField(required=False, help_text="JSON list")

    class Meta:
        model = Pal
        fields: list[str] = []  # every value is written by the service, not by the ModelForm

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        pal = self.instance
        if not pal._state.adding:
            doc = services.pal_representation(pal, mask=True)
            self.fields["account"].disabled = True  # moving a PAL between tenants is not an edit
            self.initial.update({k: doc[k] for k in ("pal_name", "system_prompt", "context", "greeting",
                                                     "pipeline_mode", "default_face_id", "objectives_id",
                                                     "guardrails_id")})
            self.initial["account"] = pal.account_id
            for name in JSON_FIELDS:
                self.initial[name] = json.dumps(doc[name], indent=2, ensure_ascii=False)
        else:
            for name in JSON_FIELDS:
                self.initial[name] = "{}" if name == "layers" else "[]"

    def _post_clean(self) -> None:
        """Nothing of the ModelForm's own: clean() validated and saved through the service."""

    def clean(self):
        cleaned = super().clean()
        data = {k: cleaned.get(k) or "" for k in ("pal_name", "system_prompt", "context", "greeting", "pipeline_mode")}
        data["default_face_id"] = cleaned.get("default_face_id") or None
        data["objectives_id"] = cleaned.get("objectives_id") or None
        data["guardrails_id"] = cleaned.get("guardrails_id") or None
        for name in JSON_FIELDS:
            text = (cleaned.get(name) or "").strip()
            try:
                data[name] = json.loads(text) if text else ({} if name == "layers" else [])
            except ValueError as exc:
                self.add_error(name, f"not valid JSON: {exc}")
        if self.errors:
            return cleaned
        try:
            if not self.instance._state.adding:
                self.instance = services.pal_update(pal=self.instance, data=data, validate=pal_input)
            else:
                self.instance = services.pal_create(account=cleaned.get("account"), data=pal_input(data))
        except SERVICE_ERRORS as exc:
            for path, message in service_error_items(exc):
                field = path.split(".")[0] if path else None
                self.add_error(field if field in self.fields else None, f"{path}: {message}" if path else message)
        return cleaned


@admin.register(Pal)
class PalAdmin(admin.ModelAdmin):
    form = PalAdminForm
    list_display = ("pal_name", "id", "account", "pipeline_mode", "thinks_with", "default_face", "updated_at")
    list_filter = ("pipeline_mode", ("account", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("id", "pal_name", "system_prompt", "account__username")
    list_select_related = ("account", "default_face")
    readonly_fields = ("id", "masked_layers", "created_at", "updated_at")
    actions = ["duplicate"]
    fieldsets = (
        (None, {"fields": ("id", "account", "pal_name", "pipeline_mode", "default_face_id")}),
        ("Prompt", {"fields": ("system_prompt", "context", "greeting")}),
        ("Layers", {"fields": ("layers",)}),
        ("Knowledge", {"fields": ("document_ids", "document_tags", "objectives_id", "guardrail_ids"),
                       "classes": ("collapse",)}),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="LLM")
    def thinks_with(self, pal: Pal) -> str:
        llm = (pal.layers or {}).get("llm", {})
        if llm.get("base_url"):
            return f"{llm.get('model') or '?'} @ {llm['base_url']}"
        return llm.get("model") or "embedded default"

    @admin.display(description="Layers (secrets masked)")
    def masked_layers(self, pal: Pal) -> str:
        return format_html("<pre>{}</pre>", json.dumps(mask_secrets(pal.layers or {}), indent=2))

    def get_fieldsets(self, request, obj=None):
        if obj is not None and obj.is_stock:
            # Stock PALs are read-only (the service refuses to change them): show, do not edit.
            return ((None, {"fields": ("id", "pal_name", "pipeline_mode", "system_prompt", "masked_layers",
                                       "created_at", "updated_at")}),)
        return self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_stock:
            return ("id", "pal_name", "pipeline_mode", "system_prompt", "masked_layers", "created_at", "updated_at")
        return self.readonly_fields

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_stock:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_stock:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change) -> None:
        """The form's clean() already saved through the service."""

    def delete_model(self, request, obj: Pal) -> None:
        services.pal_delete(pal=obj)

    def delete_queryset(self, request, queryset) -> None:
        for pal in queryset:
            if not pal.is_stock:
                services.pal_delete(pal=pal)

    @admin.action(description="Duplicate selected PALs (the copy belongs to the same account)")
    def duplicate(self, request, queryset) -> None:
        made = 0
        for pal in queryset:
            owner = pal.account or request.user
            services.pal_duplicate(pal=pal, account=owner, validate=pal_input)
            made += 1
        self.message_user(request, f"Duplicated {made} PAL(s).", messages.SUCCESS)
