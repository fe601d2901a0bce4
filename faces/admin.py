"""Faces in the Django admin: status and progress at a glance, thumbnails, errors, and the
retrain action; writes go through ``faces.services``."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from cvi_site.domain import ApplicationError
from faces import services
from faces.models import Face


class FaceAdminForm(forms.ModelForm):
    class Meta:
        model = Face
        fields = ["face_name"]

    def _post_clean(self) -> None:
        """Only the name is editable here, and face_rename writes it (see save_model)."""


@admin.register(Face)
class FaceAdmin(admin.ModelAdmin):
    form = FaceAdminForm
    list_display = ("thumb", "face_name", "id", "account", "status", "progress", "source_type", "error_code", "created_at")
    list_display_links = ("thumb", "face_name")
    list_filter = ("status", "source_type", ("account", admin.EmptyFieldListFilter), "error_code", "created_at")
    search_fields = ("id", "face_name", "account__username", "error_code", "error_message")
    list_select_related = ("account",)
    readonly_fields = ("id", "thumb_large", "account", "status", "training_progress", "error_code", "error_message",
                       "source_type", "source_file", "train_video_url", "train_image_url", "consent_video_url",
                       "callback_url", "assets_path", "task_id", "training_started_at", "training_finished_at",
                       "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("id", "thumb_large", "face_name", "account", "status", "training_progress")}),
        ("Error", {"fields": ("error_code", "error_message")}),
        ("Source", {"fields": ("source_type", "source_file", "train_video_url", "train_image_url",
                               "consent_video_url", "callback_url")}),
        ("Training", {"fields": ("assets_path", "task_id", "training_started_at", "training_finished_at",
                                 "created_at", "updated_at"), "classes": ("collapse",)}),
    )
    actions = ["retrain"]

    def has_add_permission(self, request) -> bool:
        return False  # faces are trained from an upload in the PAL Maker or over the API

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.account_id is None:
            return False  # stock faces are built by setup_opencvi
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.account_id is None:
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description="")
    def thumb(self, face: Face) -> str:
        if face.status != Face.Status.READY:
            return "—"
        return format_html('<img src="/faces/{}/thumbnail.jpg" alt="" width="40" height="40" '
                           'style="border-radius:6px;object-fit:cover">', face.id)

    @admin.display(description="Thumbnail")
    def thumb_large(self, face: Face) -> str:
        if face.status != Face.Status.READY:
            return "not trained yet"
        return format_html('<img src="/faces/{}/thumbnail.jpg" alt="" width="160" style="border-radius:8px">', face.id)

    @admin.display(description="Progress", ordering="training_progress")
    def progress(self, face: Face) -> str:
        return f"{face.training_progress}/100"

    def save_model(self, request, obj: Face, form, change) -> None:
        if change:
            services.face_rename(face=obj, face_name=form.cleaned_data["face_name"])

    def delete_model(self, request, obj: Face) -> None:
        services.face_delete(face=obj)

    def delete_queryset(self, request, queryset) -> None:
        for face in queryset:
            if face.account_id is not None:
                services.face_delete(face=face)

    @admin.action(description="Retrain selected faces from their source")
    def retrain(self, request, queryset) -> None:
        started, refused = 0, []
        for face in queryset:
            try:
                services.face_retrain(face=face)
                started += 1
            except ApplicationError as exc:
                refused.append(f"{face.face_name or face.id}: {exc.message}")
        if started:
            self.message_user(request, f"Retraining {started} face(s).", messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.WARNING)
