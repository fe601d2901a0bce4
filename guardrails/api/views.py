"""REST v2: /v2/guardrails (hosted shapes). One path serves both hosted surfaces, told apart as the
hosted API does: a body with ``guardrail_name`` at the top creates one guardrail, a body with
``data`` a legacy set; an id that is a uuid names a guardrail, a ``g…`` id a set."""
from __future__ import annotations

import uuid

from drf_spectacular.utils import (OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema,
                                   extend_schema_serializer)
from rest_framework import serializers, status
from rest_framework.response import Response

from cvi_site.api import AccountScopedViewSet, paginate
from cvi_site.domain import ApplicationError, NotFoundError
from cvi_site.parsers import DepthLimitedJSONParser, JSONPatchParser
from cvi_site.serializers import JsonPatchOperation
from guardrails import selectors, services
from guardrails.api.serializers import (GuardrailInputSerializer, GuardrailSetInputSerializer, guardrail_input,
                                        guardrail_set_input)
from guardrails.models import Guardrail


class GuardrailItemSerializer(serializers.Serializer):
    guardrail_uuid = serializers.UUIDField(help_text="What a PAL's guardrail_ids hold.")
    guardrail_name = serializers.CharField()
    guardrail_prompt = serializers.CharField()
    modality = serializers.ChoiceField(Guardrail.Modality.choices)
    callback_url = serializers.CharField(allow_null=True)
    tags = serializers.ListField(child=serializers.CharField())
    app_message = serializers.BooleanField()


class GuardrailOutputSerializer(GuardrailItemSerializer):
    guardrails_id = serializers.CharField(allow_null=True, help_text="The legacy set it belongs to, if any.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class GuardrailSetOutputSerializer(serializers.Serializer):
    guardrails_id = serializers.CharField(help_text="What a PAL's (legacy) guardrails_id holds.")
    guardrails_name = serializers.CharField()
    status = serializers.ChoiceField([services.STATUS_ACTIVE])
    data = GuardrailItemSerializer(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(many=False)
class GuardrailListSerializer(serializers.Serializer):
    data = serializers.ListField(child=serializers.DictField(), help_text=(
        "legacy=true (default): guardrail sets; legacy=false: every guardrail, one by one."))
    total_count = serializers.IntegerField()


CREATE_BODY = PolymorphicProxySerializer(
    component_name="GuardrailCreate", resource_type_field_name=None,
    serializers=[GuardrailInputSerializer, GuardrailSetInputSerializer])
ONE = PolymorphicProxySerializer(component_name="GuardrailOrSet", resource_type_field_name=None,
                                 serializers=[GuardrailOutputSerializer, GuardrailSetOutputSerializer])
ERROR = OpenApiResponse(description='{"error": "..."}')
IN_USE = OpenApiResponse(description="A PAL links it (guardrail_ids / guardrails_id): the error names them; "
                                     "unlink them first.")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class GuardrailsViewSet(AccountScopedViewSet):
    parser_classes = [DepthLimitedJSONParser, JSONPatchParser]
    lookup_field = "guardrails_id"
    lookup_value_regex = "[^/]+"
    not_found = "Guardrails not found"

    def get_queryset(self):
        return selectors.guardrail_set_list(account=self.request.user)

    def _target(self, value: str):
        """The guardrail (a uuid) or the set (``g…``) the URL names, of this account only."""
        if _is_uuid(value):
            found = selectors.guardrail_get(account=self.request.user, guardrail_uuid=value)
        else:
            found = selectors.guardrail_set_get(account=self.request.user, guardrails_id=value)
        if found is None:
            raise NotFoundError(self.not_found)
        return found

    @staticmethod
    def _render(target) -> dict:
        if isinstance(target, Guardrail):
            return services.guardrail_representation(target)
        return services.guardrail_set_representation(target)

    @extend_schema(parameters=[OpenApiParameter("limit", int), OpenApiParameter("page", int),
                               OpenApiParameter("legacy", bool, description=(
                                   "true (default): the guardrail sets; false: every guardrail."))],
                   responses=GuardrailListSerializer)
    def list(self, request):
        legacy = request.query_params.get("legacy", "true").lower()
        if legacy not in ("true", "false", "1", "0"):
            raise ApplicationError("legacy must be true or false")
        if legacy in ("true", "1"):
            return paginate(request, self.get_queryset(), services.guardrail_set_representation)
        return paginate(request, selectors.guardrail_list(account=request.user), services.guardrail_representation)

    @extend_schema(request=CREATE_BODY, responses={200: ONE, 400: ERROR}, description=(
        "`guardrail_name` at the top creates one guardrail; `{name, data: [...]}` a legacy set, whose "
        "guardrails each get a guardrail_uuid too."))
    def create(self, request):
        body = request.data
        if isinstance(body, dict) and "guardrail_name" in body:
            guardrail = services.guardrail_create(account=request.user, data=guardrail_input(body))
            return Response(services.guardrail_representation(guardrail))
        if not isinstance(body, dict) or "data" not in body:
            raise ApplicationError('send {"guardrail_name": ..., "guardrail_prompt": ...} (one guardrail) or '
                                   '{"name": ..., "data": [...]} (a set)')
        guardrail_set = services.guardrail_set_create(account=request.user, data=guardrail_set_input(body))
        return Response(services.guardrail_set_representation(guardrail_set))

    @extend_schema(responses={200: ONE})
    def retrieve(self, request, guardrails_id=None):
        return Response(self._render(self._target(guardrails_id)))

    @extend_schema(request=JsonPatchOperation(many=True), responses={200: ONE, 400: ERROR, 409: IN_USE},
                   description="RFC 6902 JSON Patch on the document GET returns, applied atomically.")
    def partial_update(self, request, guardrails_id=None):
        target = self._target(guardrails_id)
        if isinstance(target, Guardrail):
            target = services.guardrail_patch(guardrail=target, operations=request.data, validate=guardrail_input)
        else:
            target = services.guardrail_set_patch(guardrail_set=target, operations=request.data,
                                                  validate=guardrail_set_input)
        return Response(self._render(target))

    @extend_schema(responses={204: None, 409: IN_USE})
    def destroy(self, request, guardrails_id=None):
        target = self._target(guardrails_id)
        if isinstance(target, Guardrail):
            services.guardrail_delete(guardrail=target)
        else:
            services.guardrail_set_delete(guardrail_set=target)
        return Response(status=status.HTTP_204_NO_CONTENT)
