"""Request size limits with a clear 413 before anything reads the body."""
from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse


class BodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"error": "Malformed Content-Length header"}, status=400)
        content_type = request.META.get("CONTENT_TYPE", "")
        limit = settings.MAX_UPLOAD_BYTES if content_type.startswith("multipart/") else settings.MAX_JSON_BODY_BYTES
        if length > limit:
            return JsonResponse(
                {"error": f"Request body too large: {length} bytes, the limit is {limit} bytes"},
                status=413,
            )
        return self.get_response(request)
