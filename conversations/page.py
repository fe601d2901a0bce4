"""The conversation page at ``conversation_url`` (``/c/<id>/``, optionally ``?t=<meeting_token>``).

The page itself holds no secrets and starts nothing: it renders the join screen and the JS
client (``static/js/opencvi-client.js``, with the page's UI in ``opencvi-page.js``), which opens the WebSocket consumer
(``conversations.consumers``) only when the person joins. The consumer authorises the join
again (id + token), so this view only decides what a person sees first:

- unknown id → a 404 page;
- ended → a page that says so (the client is not loaded, so nothing reconnects);
- ``require_auth`` without the right token → a refusal page (403);
- otherwise the join screen.

Who may embed the page in an iframe is the account's ``allowed_embed_origins``
(``Content-Security-Policy: frame-ancestors``); X-Frame-Options is not sent, because it cannot
name other origins and browsers apply the stricter of the two.
"""
from __future__ import annotations

import hmac
import logging
import re

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET

from conversations.models import Conversation
from conversations.selectors import conversation_get_public

logger = logging.getLogger(__name__)

# An origin as CSP and postMessage understand it: scheme://host[:port], optionally a leading
# "*." wildcard label. Anything else (spaces, ";", paths) is dropped, never put in a header.
_ORIGIN_RE = re.compile(
    r"^https?://(\*\.)?([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$"
)

def embed_origins(conversation: Conversation | None) -> list[str]:
    """The account's allowed embedding origins that are well-formed (others are logged and dropped)."""
    if conversation is None or conversation.account is None:
        return []
    origins: list[str] = []
    for origin in conversation.account.allowed_embed_origins or []:
        origin = str(origin).strip().rstrip("/")
        if _ORIGIN_RE.match(origin):
            if origin not in origins:
                origins.append(origin)
        else:
            logger.warning("ignoring malformed embed origin %r of account %s", origin, conversation.account_id)
    return origins


def replica_display_name(conversation: Conversation) -> str:
    """The name captions give the replica: the face's (who the person sees), else the PAL's,
    without a trailing note such as "(stock)"."""
    name = ""
    if conversation.face is not None:
        name = conversation.face.face_name
    if not name:
        name = (conversation.pal_snapshot or {}).get("pal_name") or (conversation.pal.pal_name if conversation.pal else "")
    return re.sub(r"\s*\([^)]*\)\s*$", "", name).strip() or name


def content_security_policy(origins: list[str]) -> str:
    # Only framing and plugin/base hardening: the page's own scripts, media and WebSocket are
    # same-origin, but a stricter script/connect policy would gain little and break proxies
    # that rewrite URLs.
    return "; ".join([
        "frame-ancestors " + " ".join(["'self'", *origins]),
        "object-src 'none'",
        "base-uri 'none'",
    ])


def _respond(request: HttpRequest, conversation: Conversation | None, context: dict, status: int = 200) -> HttpResponse:
    response = render(request, "conversations/page.html", context, status=status)
    response["Content-Security-Policy"] = content_security_policy(embed_origins(conversation))
    # The page is only ever reached by its secret-ish URL; keep it (and the token in its URL)
    # out of Referer headers sent to anything it loads.
    response["Referrer-Policy"] = "same-origin"
    return response


@require_GET
@never_cache
@xframe_options_exempt
def conversation_page(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """What a person sees at ``conversation_url``."""
    conversation = conversation_get_public(conversation_id=conversation_id)
    if conversation is None or conversation.deleted_at is not None:
        return _respond(request, None, {"state": "not_found", "title": "Conversation not found"}, status=404)

    name = replica_display_name(conversation)
    # the title names the agent the person came to talk to (the PAL), the captions the face they see
    pal_name = (conversation.pal_snapshot or {}).get("pal_name") or (conversation.pal.pal_name if conversation.pal else "")
    pal_name = re.sub(r"\s*\([^)]*\)\s*$", "", pal_name).strip() or pal_name
    title = conversation.conversation_name or (f"Talk with {pal_name or name}" if pal_name or name else "Conversation")
    if conversation.status != Conversation.Status.ACTIVE:
        return _respond(request, conversation, {"state": "ended", "title": title, "conversation": conversation})

    token = request.GET.get("t") or request.GET.get("token") or ""
    if conversation.require_auth and not hmac.compare_digest(token.encode(), (conversation.meeting_token or "").encode()):
        reason = "missing" if not token else "wrong"
        return _respond(request, conversation, {"state": "refused", "title": title, "reason": reason}, status=403)

    origins = embed_origins(conversation)
    props = conversation.properties or {}
    face_ready = conversation.face is not None and conversation.face.status == "ready"
    config = {
        "conversation_id": conversation.pk,
        "conversation_name": conversation.conversation_name,
        "ws_path": f"/ws/conversations/{conversation.pk}/",
        "token": token if conversation.require_auth else "",
        # Where embedding pages may talk to the client from (postMessage); the page's own
        # origin is always allowed and added by the client.
        "allowed_origins": origins,
        "audio_only": bool(conversation.audio_only or not face_ready),
        "closed_captions": bool(props.get("enable_closed_captions", True)),
        "replica_name": name,
    }
    return _respond(request, conversation, {"state": "join", "title": title, "config": config})
