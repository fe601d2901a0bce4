"""REST v2: /v2/faces (and legacy /v2/replicas)."""
from __future__ import annotations

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from cvi_site.api import AccountScopedViewSet, base_url, paginate
from cvi_site.domain import ApplicationError, NotFoundError
from cvi_site.serializers import OutboundURLField, StrictSerializer
from faces import selectors, services
from faces.models import HOSTED_MODEL_NAMES, HOSTED_STATUS_NAMES, Face
from faces.paths import face_assets_dir


def render_face(face: Face, request=None) -> dict:
    root = base_url(request) if request is not None else (settings.PUBLIC_URL or "")
    has_assets = face.status == Face.Status.READY and bool(face.assets_path)
    return {
        "face_id": face.id,
        "replica_id": face.id,
        "face_name": face.face_name,
        "replica_name": face.face_name,
        # the hosted API's status names (ready is "completed" there); ours in training_status
        "status": HOSTED_STATUS_NAMES.get(face.status, face.status),
        "training_status": face.status,
        "model_name": face.model_name,
        "voice_name": face.voice_name or None,
        "training_progress": f"{face.training_progress}/100",
        "thumbnail_url": f"{root}/v2/faces/{face.id}/thumbnail" if has_assets else None,
        "thumbnail_video_url": f"{root}/v2/faces/{face.id}/preview" if has_assets else None,
        "error_message": face.error_message or None,
        "error_code": face.error_code or None,
        "face_type": face.face_type,
        "replica_type": face.face_type,
        "created_at": face.created_at.isoformat(),
        "updated_at": face.updated_at.isoformat(),
    }


class FaceCreateSerializer(StrictSerializer):
    not_object_message = "the body must be a JSON object or a multipart form"

    train_video_url = OutboundURLField(required=False, max_length=2000, help_text="A ~1 minute video of one person.")
    train_image_url = OutboundURLField(required=False, max_length=2000, help_text="(exclusive) A single photo.")
    file = serializers.FileField(required=False, help_text="(ours) A multipart upload instead of a URL.")
    face_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    replica_name = serializers.CharField(required=False, allow_blank=True, max_length=200, help_text="Legacy name of face_name.")
    callback_url = OutboundURLField(required=False, allow_blank=True, max_length=2000)
    consent_video_url = OutboundURLField(
        required=False, allow_blank=True, max_length=2000,
        help_text="A separate recording of the consent statement naming face_name; when given it is always "
                  "checked (error consent_phrase_mismatch), and the training video need not open with it.")
    model_name = serializers.ChoiceField(
        HOSTED_MODEL_NAMES, required=False,
        help_text="The hosted API's face model (default phoenix-4). Every face here is drawn by OpenCVI's own "
                  "renderer, trained the same way: the name is kept and shown, and the response's warnings say so.")
    voice_name = serializers.CharField(
        required=False, allow_blank=True, max_length=200,
        help_text="A voice installed here (GET /v2/voices): conversations with this face speak with it when "
                  "their PAL names no voice (layers.tts voice_id / external_voice_id).")


class FaceRenameSerializer(serializers.Serializer):
    face_name = serializers.CharField(required=False, max_length=200)
    replica_name = serializers.CharField(required=False, max_length=200)

    def validate(self, attrs):
        name = attrs.get("face_name", attrs.get("replica_name"))
        if name is None:
            raise serializers.ValidationError("face_name is required")
        return {"face_name": name}


class FaceOutputSerializer(serializers.Serializer):
    face_id = serializers.CharField()
    replica_id = serializers.CharField()
    face_name = serializers.CharField()
    replica_name = serializers.CharField()
    status = serializers.ChoiceField(
        [HOSTED_STATUS_NAMES.get(s, s) for s in Face.Status.values],
        help_text="The hosted API's names: started, training, completed (ours: ready), error.")
    training_status = serializers.ChoiceField(Face.Status.choices, help_text="(ours) started, training, ready, error.")
    model_name = serializers.CharField()
    voice_name = serializers.CharField(allow_null=True)
    training_progress = serializers.CharField()
    thumbnail_url = serializers.CharField(allow_null=True)
    thumbnail_video_url = serializers.CharField(allow_null=True)
    error_message = serializers.CharField(allow_null=True)
    error_code = serializers.CharField(allow_null=True)
    face_type = serializers.ChoiceField(["system", "user"])
    replica_type = serializers.ChoiceField(["system", "user"])
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class FaceCreatedSerializer(serializers.Serializer):
    face_id = serializers.CharField()
    replica_id = serializers.CharField()
    status = serializers.CharField()
    model_name = serializers.CharField()
    warnings = serializers.ListField(child=serializers.CharField(),
                                     help_text="(ours) What was mapped onto what this server does.")


@extend_schema_serializer(many=False)  # a list action, but the body is an object
class FaceListSerializer(serializers.Serializer):
    data = FaceOutputSerializer(many=True)
    total_count = serializers.IntegerField()


#: the list's status filter: our statuses and the hosted API's names for them
STATUS_FILTERS = list(Face.Status.values) + list(HOSTED_STATUS_NAMES.values())


class FaceViewSet(AccountScopedViewSet):
    lookup_field = "face_id"
    lookup_value_regex = "[^/]+"
    not_found = "Face not found"

    def get_queryset(self):
        return selectors.face_list(account=self.request.user)

    @extend_schema(parameters=[OpenApiParameter("limit", int), OpenApiParameter("page", int),
                               OpenApiParameter("face_type", str, enum=["system", "user"]),
                               OpenApiParameter("status", str, enum=STATUS_FILTERS,
                                                description="The hosted names or ours (completed = ready).")],
                   responses=FaceListSerializer)
    def list(self, request):
        face_type = request.query_params.get("face_type") or request.query_params.get("replica_type")
        if face_type not in (None, "", "system", "user"):
            raise ApplicationError("face_type must be system or user")
        wanted = request.query_params.get("status") or None
        if wanted is not None and wanted not in STATUS_FILTERS:
            raise ApplicationError(f"status must be one of {', '.join(STATUS_FILTERS)}")
        status_filter = next((ours for ours, hosted in HOSTED_STATUS_NAMES.items() if hosted == wanted), wanted)
        return paginate(request, selectors.face_list(account=request.user, face_type=face_type or None,
                                                     status=status_filter),
                        lambda f: render_face(f, request))

    @extend_schema(request={"application/json": FaceCreateSerializer, "multipart/form-data": FaceCreateSerializer},
                   responses={200: FaceCreatedSerializer})
    def create(self, request):
        serializer = FaceCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        v = serializer.validated_data
        warnings: list[str] = []
        face = services.face_create(
            account=request.user,
            face_name=v.get("face_name") or v.get("replica_name") or "",
            train_video_url=v.get("train_video_url", ""),
            train_image_url=v.get("train_image_url", ""),
            upload=v.get("file"),
            callback_url=v.get("callback_url", ""),
            consent_video_url=v.get("consent_video_url", ""),
            model_name=v.get("model_name", ""),
            voice_name=v.get("voice_name", ""),
            warnings=warnings,
        )
        return Response({"face_id": face.id, "replica_id": face.id, "status": face.status,
                         "model_name": face.model_name, "warnings": warnings})

    @extend_schema(responses=FaceOutputSerializer)
    def retrieve(self, request, face_id=None):
        return Response(render_face(self.get_object(), request))

    @extend_schema(request=FaceRenameSerializer, responses=FaceOutputSerializer)
    def partial_update(self, request, face_id=None):
        serializer = FaceRenameSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        face = services.face_rename(face=self.get_object(owned=True), face_name=serializer.validated_data["face_name"])
        return Response(render_face(face, request))

    @extend_schema(request=None, responses=FaceOutputSerializer, description="Rename (legacy endpoint).")
    @action(detail=True, methods=["patch"], url_path="name")
    def rename(self, request, face_id=None):
        return self.partial_update(request, face_id)

    @extend_schema(request=None, responses=FaceOutputSerializer, description="(ours) Train the face again from its source.")
    @action(detail=True, methods=["post"])
    def retrain(self, request, face_id=None):
        face = services.face_retrain(face=self.get_object(owned=True))
        return Response(render_face(face, request))

    @extend_schema(responses={204: None})
    def destroy(self, request, face_id=None):
        services.face_delete(face=self.get_object(owned=True))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={(200, "image/jpeg"): bytes})
    @action(detail=True, methods=["get"])
    def thumbnail(self, request, face_id=None):
        return self._asset(request, face_id, "thumbnail.jpg", "image/jpeg")

    @extend_schema(responses={(200, "video/mp4"): bytes})
    @action(detail=True, methods=["get"])
    def preview(self, request, face_id=None):
        return self._asset(request, face_id, "preview.mp4", "video/mp4")

    def _asset(self, request, face_id, filename, content_type):
        face = self.get_object()
        path = face_assets_dir(face) / filename
        if face.status != Face.Status.READY or not path.exists():
            raise NotFoundError(f"the face has no {filename} yet")
        return FileResponse(open(path, "rb"), content_type=content_type)

