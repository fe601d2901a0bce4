"""REST v2: /v2/conversations."""
from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from conversations import selectors, services
from conversations.api.serializers import ConversationInputSerializer, conversation_input
from conversations.models import Conversation
from cvi_site.api import AccountScopedViewSet, base_url, bool_param, paginate
from cvi_site.domain import ApplicationError, NotFoundError
from cvi_site.parsers import DepthLimitedJSONParser


def render_conversation(conversation: Conversation, request, *, verbose: bool = False, created: bool = False) -> dict:
    data = {
        "conversation_id": conversation.id,
        "conversation_name": conversation.conversation_name,
        "conversation_url": selectors.conversation_url(conversation, base_url=base_url(request)),
        "status": conversation.status,
        "callback_url": conversation.callback_url or None,
        "replica_id": conversation.face_id,
        "face_id": conversation.face_id,
        "persona_id": conversation.pal_id,
        "pal_id": conversation.pal_id,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
    }
    if created and conversation.require_auth:
        data["meeting_token"] = conversation.meeting_token
    if not created:
        data.update(
            conversational_context=conversation.conversational_context,
            custom_greeting=conversation.custom_greeting,
            enable_dynamic_greeting=conversation.enable_dynamic_greeting,
            audio_only=conversation.audio_only,
            test_mode=conversation.test_mode,
            require_auth=conversation.require_auth,
            max_participants=conversation.max_participants,
            properties=conversation.properties,
            shutdown_reason=conversation.shutdown_reason or None,
            started_at=conversation.started_at.isoformat() if conversation.started_at else None,
            ended_at=conversation.ended_at.isoformat() if conversation.ended_at else None,
            recording_url=(services.recording_url(conversation, base_url=base_url(request))
                           if conversation.recording_file else None),
            recording_duration=conversation.recording_duration,
        )
    if verbose:
        data["events"] = [
            {
                "conversation_id": conversation.id,
                "event_type": e.event_type,
                "message_type": e.message_type,
                "timestamp": e.timestamp.isoformat(),
                "properties": e.properties,
            }
            for e in selectors.conversation_events(conversation=conversation)
        ]
        data["transcript"] = services.transcript_of(conversation)
    return data


class ConversationCreatedSerializer(serializers.Serializer):
    conversation_id = serializers.CharField()
    conversation_name = serializers.CharField()
    conversation_url = serializers.CharField()
    status = serializers.ChoiceField(Conversation.Status.choices)
    callback_url = serializers.CharField(allow_null=True)
    replica_id = serializers.CharField(allow_null=True)
    face_id = serializers.CharField(allow_null=True)
    persona_id = serializers.CharField(allow_null=True)
    pal_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    meeting_token = serializers.CharField(required=False)


class ConversationEventSerializer(serializers.Serializer):
    conversation_id = serializers.CharField()
    event_type = serializers.CharField()
    message_type = serializers.CharField()
    timestamp = serializers.DateTimeField()
    properties = serializers.DictField()


class ConversationOutputSerializer(ConversationCreatedSerializer):
    conversational_context = serializers.CharField()
    custom_greeting = serializers.CharField()
    enable_dynamic_greeting = serializers.BooleanField()
    audio_only = serializers.BooleanField()
    test_mode = serializers.BooleanField()
    require_auth = serializers.BooleanField()
    max_participants = serializers.IntegerField(allow_null=True)
    properties = serializers.DictField()
    shutdown_reason = serializers.CharField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    recording_url = serializers.CharField(allow_null=True, help_text="(ours) with properties.enable_recording, "
                                          "once the call has ended: GET it with the API key")
    recording_duration = serializers.FloatField(allow_null=True)
    events = ConversationEventSerializer(many=True, required=False)
    transcript = serializers.ListField(child=serializers.DictField(), required=False)


@extend_schema_serializer(many=False)  # a list action, but the body is an object
class ConversationListSerializer(serializers.Serializer):
    data = ConversationOutputSerializer(many=True)
    total_count = serializers.IntegerField()


class ConversationViewSet(AccountScopedViewSet):
    parser_classes = [DepthLimitedJSONParser]
    lookup_field = "conversation_id"
    lookup_value_regex = "[^/]+"
    not_found = "Conversation not found"

    def get_queryset(self):
        return selectors.conversation_list(account=self.request.user)

    def perform_content_negotiation(self, request, force=False):
        # A client fetching the recording may ask for its media type (Accept: video/mp4): the
        # file is served as it is, and an error on that route is still JSON.
        return super().perform_content_negotiation(request, force=force or self.action == "recording")

    @extend_schema(parameters=[OpenApiParameter("limit", int), OpenApiParameter("page", int),
                               OpenApiParameter("status", str, enum=["active", "ended"])],
                   responses=ConversationListSerializer)
    def list(self, request):
        state = request.query_params.get("status")
        if state not in (None, "", "active", "ended"):
            raise ApplicationError("status must be active or ended")
        qs = selectors.conversation_list(account=request.user, status=state or None)
        return paginate(request, qs, lambda c: render_conversation(c, request))

    @extend_schema(request=ConversationInputSerializer, responses={200: ConversationCreatedSerializer})
    def create(self, request):
        conversation = services.conversation_create(account=request.user, data=conversation_input(request.data),
                                                    base_url=base_url(request))
        return Response(render_conversation(conversation, request, created=True))

    @extend_schema(parameters=[OpenApiParameter("verbose", bool)], responses=ConversationOutputSerializer)
    def retrieve(self, request, conversation_id=None):
        conversation = self.get_object()
        return Response(render_conversation(conversation, request, verbose=bool_param(request, "verbose")))

    @extend_schema(request=None, responses=ConversationOutputSerializer)
    @action(detail=True, methods=["post"])
    def end(self, request, conversation_id=None):
        conversation = services.conversation_end(conversation=self.get_object())
        return Response(render_conversation(conversation, request))

    @extend_schema(responses={(200, "video/mp4"): OpenApiTypes.BINARY, (200, "audio/mp4"): OpenApiTypes.BINARY,
                              404: OpenApiTypes.OBJECT},
                   description="(ours) The call's recording (properties.enable_recording): MP4 (face video, "
                               "reply and microphone audio) or M4A for audio-only calls. 404 until it is ready.")
    @action(detail=True, methods=["get"])
    def recording(self, request, conversation_id=None):
        conversation = self.get_object()
        path = services.recording_path(conversation)
        if path is None:
            raise NotFoundError("This conversation has no recording" + (
                "" if conversation.properties.get("enable_recording") else " (enable_recording was off)"))
        return FileResponse(path.open("rb"), content_type=services.recording_media_type(path), filename=path.name)

    @extend_schema(parameters=[OpenApiParameter("hard", bool)], responses={204: None})
    def destroy(self, request, conversation_id=None):
        services.conversation_delete(conversation=self.get_object(), hard=bool_param(request, "hard"))
        return Response(status=status.HTTP_204_NO_CONTENT)

