"""REST v2: /v2/objectives (hosted shapes)."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from cvi_site.api import AccountScopedViewSet, paginate
from cvi_site.parsers import DepthLimitedJSONParser, JSONPatchParser
from cvi_site.serializers import JsonPatchOperation
from objectives import selectors, services
from objectives.api.serializers import ObjectivesInputSerializer, objectives_input
from objectives.models import Objective


class ObjectiveOutputSerializer(serializers.Serializer):
    objective_name = serializers.CharField()
    objective_prompt = serializers.CharField()
    confirmation_mode = serializers.ChoiceField(Objective.ConfirmationMode.choices)
    output_variables = serializers.ListField(child=serializers.CharField())
    modality = serializers.ChoiceField(Objective.Modality.choices)
    next_required_objectives = serializers.ListField(child=serializers.CharField())
    next_conditional_objectives = serializers.DictField(child=serializers.CharField())
    callback_url = serializers.CharField(allow_null=True)


class ObjectivesOutputSerializer(serializers.Serializer):
    objectives_id = serializers.CharField()
    objective_name = serializers.CharField(help_text="The set's start objective(s).")
    status = serializers.ChoiceField([services.STATUS_ACTIVE])
    data = ObjectiveOutputSerializer(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ObjectivesCreatedSerializer(serializers.Serializer):
    objectives_id = serializers.CharField()
    objective_name = serializers.CharField()
    status = serializers.ChoiceField([services.STATUS_ACTIVE])
    created_at = serializers.DateTimeField()


@extend_schema_serializer(many=False)
class ObjectivesListSerializer(serializers.Serializer):
    data = ObjectivesOutputSerializer(many=True)
    total_count = serializers.IntegerField()


ERROR = OpenApiResponse(description='{"error": "..."}')


class ObjectivesViewSet(AccountScopedViewSet):
    parser_classes = [DepthLimitedJSONParser, JSONPatchParser]
    lookup_field = "objectives_id"
    lookup_value_regex = "[^/]+"
    not_found = "Objectives not found"

    def get_queryset(self):
        return selectors.objective_set_list(account=self.request.user)

    @extend_schema(parameters=[OpenApiParameter("limit", int), OpenApiParameter("page", int)],
                   responses=ObjectivesListSerializer)
    def list(self, request):
        return paginate(request, self.get_queryset(), services.objectives_representation)

    @extend_schema(request=ObjectivesInputSerializer,
                   responses={200: ObjectivesCreatedSerializer, 400: ERROR},
                   description="A set of objectives: `data` is checked as a graph (names unique, next_* names in "
                               "the set, at most one of next_required/next_conditional each, no cycles, a start "
                               "objective). A bare array of objectives is accepted too.")
    def create(self, request):
        objective_set = services.objectives_create(account=request.user, data=objectives_input(request.data))
        body = services.objectives_representation(objective_set)
        return Response({k: body[k] for k in ("objectives_id", "objective_name", "status", "created_at")})

    @extend_schema(responses=ObjectivesOutputSerializer)
    def retrieve(self, request, objectives_id=None):
        return Response(services.objectives_representation(self.get_object()))

    @extend_schema(request=JsonPatchOperation(many=True), responses={200: ObjectivesOutputSerializer, 400: ERROR},
                   description="RFC 6902 JSON Patch on the set's document (e.g. /data/0/objective_prompt), applied "
                               "atomically; the result is checked like a new set.")
    def partial_update(self, request, objectives_id=None):
        objective_set = services.objectives_patch(objective_set=self.get_object(owned=True), operations=request.data,
                                                  validate=objectives_input)
        return Response(services.objectives_representation(objective_set))

    @extend_schema(responses={204: None, 409: OpenApiResponse(
        description="A PAL uses the set (objectives_id): the error names them; unlink them first.")})
    def destroy(self, request, objectives_id=None):
        services.objectives_delete(objective_set=self.get_object(owned=True))
        return Response(status=status.HTTP_204_NO_CONTENT)
