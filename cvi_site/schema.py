"""OpenAPI generation details: the x-api-key scheme and the documented error responses."""
from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string", "description": "What was wrong, for a person to read."}},
    "required": ["error"],
}
MESSAGE_SCHEMA = {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}
ERROR_RESPONSES = {
    "400": ("Invalid input (or, with a `message` body, the concurrency limit).",
            {"oneOf": [{"$ref": "#/components/schemas/Error"}, {"$ref": "#/components/schemas/Message"}]}),
    "401": ("Missing or wrong `x-api-key`.", {"$ref": "#/components/schemas/Message"}),
    "404": ("Unknown id, or another account's.", {"$ref": "#/components/schemas/Error"}),
    "405": ("Method not allowed.", {"$ref": "#/components/schemas/Error"}),
    "413": ("Request body too large.", {"$ref": "#/components/schemas/Error"}),
    "415": ("Unsupported content type.", {"$ref": "#/components/schemas/Error"}),
}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "cvi_site.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "x-api-key"}


def add_request_constraints(result, generator, request, public):
    """What the serializers check across fields, in the schema a client is generated from: two
    names for one field are never sent together, a face has exactly one source (in words), a
    conversation's language is one the recognisers know."""
    from conversations import services as conversation_services
    from conversations.realtime.engines.languages import accepted_names
    from pals.services import LEGACY_NAMES as PAL_NAMES

    schemas = result.get("components", {}).get("schemas", {})

    def one_name(component: str, names: dict[str, str]) -> None:
        if component in schemas:
            schemas[component].setdefault("allOf", []).extend(
                {"not": {"required": [old, new]}} for old, new in names.items())

    one_name("PalCreateRequest", PAL_NAMES)
    one_name("ConversationInputRequest", conversation_services.LEGACY_NAMES)
    if "FaceCreateRequest" in schemas:
        # said in words: combinators over the multipart body (its binary field) break schema-driven
        # tools (schemathesis could not generate it)
        schemas["FaceCreateRequest"]["description"] = (
            "Give exactly one source: train_video_url, train_image_url, or file (a multipart upload); "
            "replica_name is the legacy name of face_name (send one of them).")
    language = schemas.get("PropertiesRequest", {}).get("properties", {}).get("language")
    if language is not None:
        language["enum"] = accepted_names()
    return result


def add_error_responses(result, generator, request, public):
    """Every operation documents the error bodies our one exception handler produces."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["Message"] = MESSAGE_SCHEMA
    for path in result.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            for code, (description, schema) in ERROR_RESPONSES.items():
                responses.setdefault(code, {"description": description, "content": {"application/json": {"schema": schema}}})
    return result
