"""Request size limits with a clear 413 before a view reads the body (WSGI and the test client;
under ASGI, ``cvi_site.bodylimit`` answers first, before the body is even received)."""
from __future__ import annotations

from django.http import JsonResponse

from cvi_site.bodylimit import body_limit, too_large_message


class BodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"error": "Malformed Content-Length header"}, status=400)
        limit = body_limit(request.META.get("CONTENT_TYPE", ""))
        if length > limit:
            return JsonResponse({"error": too_large_message(length, limit)}, status=413)
        return self.get_response(request)
