"""REST v2: /v2/pals (and legacy /v2/personas), and /v2/engines."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from cvi_site.api import AccountScopedViewSet, paginate
from cvi_site.parsers import DepthLimitedJSONParser, JSONPatchParser
from cvi_site.serializers import JsonPatchOperation
from pals import selectors, services
from pals.api.serializers import PalInputSerializer, pal_input
from pals.layers import LayersSerializer


def render_pal(pal) -> dict:
    data = services.pal_representation(pal)
    # Both name sets, so clients of either API read the fields they know.
    data.update(persona_id=data["pal_id"], persona_name=data["pal_name"], default_replica_id=data["default_face_id"],
                persona_type=data["pal_type"])
    return data


class PalCreateSerializer(PalInputSerializer):
    persona_name = serializers.CharField(required=False, help_text="Legacy name of pal_name.")
    default_replica_id = serializers.CharField(required=False, help_text="Legacy name of default_face_id.")
    layers = LayersSerializer(required=False)


class PalOutputSerializer(serializers.Serializer):
    pal_id = serializers.CharField()
    persona_id = serializers.CharField()
    pal_name = serializers.CharField()
    persona_name = serializers.CharField()
    system_prompt = serializers.CharField()
    context = serializers.CharField()
    greeting = serializers.CharField()
    pipeline_mode = serializers.CharField()
    default_face_id = serializers.CharField(allow_null=True)
    default_replica_id = serializers.CharField(allow_null=True)
    document_ids = serializers.ListField(child=serializers.CharField())
    document_tags = serializers.ListField(child=serializers.CharField())
    objectives_id = serializers.CharField(allow_null=True)
    guardrail_ids = serializers.ListField(child=serializers.CharField())
    guardrails_id = serializers.CharField(allow_null=True)
    layers = LayersSerializer()
    pal_type = serializers.ChoiceField(["system", "user"])
    persona_type = serializers.ChoiceField(["system", "user"])
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PalWrittenSerializer(PalOutputSerializer):
    warnings = serializers.ListField(
        child=serializers.CharField(),
        help_text="(ours) The hosted product's managed engine names in the request and the engine each "
                  "now means (GET /v2/engines lists them), and IPA rules of the linked pronunciation "
                  "dictionary that the TTS engine cannot pronounce; empty when there is nothing to say.")


@extend_schema_serializer(many=False)  # a list action, but the body is an object
class PalListSerializer(serializers.Serializer):
    data = PalOutputSerializer(many=True)
    total_count = serializers.IntegerField()


class PalViewSet(AccountScopedViewSet):
    parser_classes = [DepthLimitedJSONParser, JSONPatchParser]
    lookup_field = "pal_id"
    lookup_value_regex = "[^/]+"
    not_found = "PAL not found"

    def get_queryset(self):
        return selectors.pal_list(account=self.request.user)

    @extend_schema(
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("page", int),
                    OpenApiParameter("pal_type", str, enum=["system", "user"])],
        responses=PalListSerializer,
    )
    def list(self, request):
        pal_type = request.query_params.get("pal_type") or request.query_params.get("persona_type")
        return paginate(request, selectors.pal_list(account=request.user, pal_type=pal_type), render_pal)

    @extend_schema(request=PalCreateSerializer, responses={200: PalWrittenSerializer})
    def create(self, request):
        warnings: list[str] = []
        pal = services.pal_create(account=request.user, data=pal_input(request.data, warnings=warnings),
                                  warnings=warnings)
        return Response({**render_pal(pal), "warnings": warnings}, status=status.HTTP_200_OK)

    @extend_schema(responses=PalOutputSerializer)
    def retrieve(self, request, pal_id=None):
        return Response(render_pal(self.get_object()))

    @extend_schema(request=JsonPatchOperation(many=True), responses=PalWrittenSerializer,
                   description="RFC 6902 JSON Patch, applied atomically.")
    def partial_update(self, request, pal_id=None):
        warnings: list[str] = []
        pal = services.pal_patch(pal=self.get_object(owned=True), operations=request.data, warnings=warnings,
                                 validate=lambda document: pal_input(document, warnings=warnings))
        return Response({**render_pal(pal), "warnings": warnings})

    @extend_schema(responses={204: None})
    def destroy(self, request, pal_id=None):
        services.pal_delete(pal=self.get_object(owned=True))
        return Response(status=status.HTTP_204_NO_CONTENT)



class EnginesView(APIView):
    """(ours) The engines that exist in this installation: the valid choices of each layer."""

    @extend_schema(responses={200: dict})
    def get(self, request):
        from conversations.realtime.frontdoor import engine_catalogue

        from conversations.realtime.engines.hosted import table

        # hosted_names: the hosted product's managed engine names and the engine each means here
        return Response({"data": engine_catalogue(), "hosted_names": table()})


class VoiceSerializer(serializers.Serializer):
    voice_id = serializers.CharField(help_text="The value of layers.tts.voice_id.")
    name = serializers.CharField()
    engine = serializers.CharField(help_text="The layers.tts.tts_engine that speaks it.")
    language = serializers.CharField(help_text="ISO 639-1 code.")


@extend_schema_serializer(many=False)
class VoiceListSerializer(serializers.Serializer):
    data = VoiceSerializer(many=True)
    total_count = serializers.IntegerField()


class VoicesView(APIView):
    """The voices installed on this server (the embedded engines'); a cloud engine's voices are
    its provider's ids, given as ``voice_id`` with that ``tts_engine``."""

    @extend_schema(responses=VoiceListSerializer)
    def get(self, request):
        from conversations.realtime.frontdoor import voice_catalogue

        voices = voice_catalogue()
        return Response({"data": voices, "total_count": len(voices)})
