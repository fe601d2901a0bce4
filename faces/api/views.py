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
from cvi_site.errors import ApplicationError, NotFoundError
from cvi_site.serializers import OutboundURLField, StrictSerializer
from faces import selectors, services
from faces.models import Face
from faces.paths import face_assets_dir


def render_face(face: Face, request=None) -> dict:
    root = base_url(request) if request is not None else (settings.PUBLIC_URL or "")
    has_assets = face.status == Face.Status.READY and bool(face.assets_path)
    return {
        "face_id": face.id,
        "replica_id": face.id,
        "face_name": face.face_name,
        "replica_name": face.face_name,
        "status": face.status,
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
    consent_video_url = OutboundURLField(required=False, allow_blank=True, max_length=2000)


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
    status = serializers.ChoiceField(Face.Status.choices)
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


@extend_schema_serializer(many=False)  # a list action, but the body is an object
class FaceListSerializer(serializers.Serializer):
    data = FaceOutputSerializer(many=True)
    total_count = serializers.IntegerField()


class FaceViewSet(AccountScopedViewSet):
    lookup_field = "face_id"
    lookup_value_regex = "[^/]+"
    not_found = "Face not found"

    def get_queryset(self):
        return selectors.face_list(account=self.request.user)

    @extend_schema(parameters=[OpenApiParameter("limit", int), OpenApiParameter("page", int),
                               OpenApiParameter("face_type", str, enum=["system", "user"])],
                   responses=FaceListSerializer)
    def list(self, request):
        face_type = request.query_params.get("face_type") or request.query_params.get("replica_type")
        if face_type not in (None, "", "system", "user"):
            raise ApplicationError("face_type must be system or user")
        return paginate(request, selectors.face_list(account=request.user, face_type=face_type or None),
                        lambda f: render_face(f, request))

    @extend_schema(request={"application/json": FaceCreateSerializer, "multipart/form-data": FaceCreateSerializer},
                   responses={200: FaceCreatedSerializer})
    def create(self, request):
        serializer = FaceCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        v = serializer.validated_data
        face = services.face_create(
            account=request.user,
            face_name=v.get("face_name") or v.get("replica_name") or "",
            train_video_url=v.get("train_video_url", ""),
            train_image_url=v.get("train_image_url", ""),
            upload=v.get("file"),
            callback_url=v.get("callback_url", ""),
            consent_video_url=v.get("consent_video_url", ""),
        )
        return Response({"face_id": face.id, "replica_id": face.id, "status": face.status})

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

