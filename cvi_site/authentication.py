"""DRF authentication by the ``x-api-key`` header (the hosted product's scheme)."""
from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions

from cvi_site.selectors import api_key_get_active


class ApiKeyAuthentication(authentication.BaseAuthentication):
    header = "HTTP_X_API_KEY"

    def authenticate(self, request):
        raw = request.META.get(self.header, "").strip()
        if not raw:
            return None  # -> NotAuthenticated -> 401 through the exception handler
        key = api_key_get_active(raw_key=raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid access token")
        now = timezone.now()
        # Touch last_used at most once a minute: a busy key should not write on every call.
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            type(key).objects.filter(pk=key.pk).update(last_used_at=now)
        return key.account, key

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) when the key is missing.
        return "x-api-key"
