"""The API's JSON parser: DRF's, with a cap on nesting depth checked before parsing.

A 100 KB body of 50,000 nested arrays made Python's json raise RecursionError (a 500). The
depth is counted by one pass over the bytes (outside strings) before ``json.loads`` runs, and a
body nested deeper than ``MAX_JSON_DEPTH`` gets a 400 that says so.
"""
from __future__ import annotations

import io

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def json_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


class DepthLimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read()
        limit = settings.MAX_JSON_DEPTH
        if json_depth(data) > limit:
            raise ParseError(f"JSON parse error - the body is nested deeper than {limit} levels")
        try:
            return super().parse(io.BytesIO(data), media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - the body is nested deeper than {limit} levels") from None


class JSONPatchParser(DepthLimitedJSONParser):
    """RFC 6902 bodies as their RFC names them (``application/json-patch+json``): hosted-API
    clients send PATCH with that type."""

    media_type = "application/json-patch+json"
