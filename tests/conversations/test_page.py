"""The conversation page view: what a person sees first, and who may embed it."""
from __future__ import annotations

import json
import re

import pytest

from conversations.models import Conversation
from cvi_site.services import account_update_embed_origins
from tests.factories import make_face, make_pal

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(account):
    face = make_face(account=account)
    pal = make_pal(account=account, name="Eileen", face=face)
    return Conversation.objects.create(account=account, face=face, pal=pal, conversation_name="Support call",
                                       properties={"enable_closed_captions": True})


def frame_ancestors(response) -> list[str]:
    csp = response["Content-Security-Policy"]
    directive = next(d.strip() for d in csp.split(";") if d.strip().startswith("frame-ancestors"))
    return directive.split()[1:]


def page_config(response) -> dict:
    match = re.search(r'<script id="opencvi-config" type="application/json">(.*?)</script>', response.content.decode(), re.S)
    assert match, "the join page renders its config"
    return json.loads(match.group(1))


def test_join_page_renders_the_client_and_its_config(client, conversation):
    r = client.get(f"/c/{conversation.pk}/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "/static/js/opencvi-client.js" in html and 'id="opencvi-join-button"' in html
    config = page_config(r)
    assert config["conversation_id"] == conversation.pk
    assert config["ws_path"] == f"/ws/conversations/{conversation.pk}/"
    assert config["closed_captions"] is True and config["audio_only"] is False
    assert config["token"] == "" and config["allowed_origins"] == []
    assert config["replica_name"] == "Test face"
    assert r["Cache-Control"].startswith("max-age=0") or "no-cache" in r["Cache-Control"]


def test_unknown_id_is_a_404_page(client):
    r = client.get("/c/cdoesnotexist/")
    assert r.status_code == 404
    html = r.content.decode()
    assert "Conversation not found" in html and "opencvi-client.js" not in html


def test_deleted_conversation_is_not_found(client, conversation):
    from django.utils import timezone

    Conversation.objects.filter(pk=conversation.pk).update(deleted_at=timezone.now())
    assert client.get(f"/c/{conversation.pk}/").status_code == 404


def test_ended_conversation_says_so_and_does_not_connect(client, conversation):
    Conversation.objects.filter(pk=conversation.pk).update(status=Conversation.Status.ENDED)
    r = client.get(f"/c/{conversation.pk}/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "This conversation has ended" in html
    # No client script and no config: nothing on the page can open the WebSocket.
    assert "opencvi-client.js" not in html and "opencvi-config" not in html and "/ws/" not in html


@pytest.mark.parametrize("query, reason", [("", "has none"), ("?t=wrong-token", "not valid"), ("?t=%C3%A9", "not valid")])
def test_private_conversation_refuses_without_the_right_token(client, conversation, query, reason):
    Conversation.objects.filter(pk=conversation.pk).update(require_auth=True, meeting_token="s3cret-token-123")
    r = client.get(f"/c/{conversation.pk}/{query}")
    assert r.status_code == 403
    html = r.content.decode()
    assert "This conversation is private" in html and reason in html
    assert "opencvi-client.js" not in html and "s3cret-token-123" not in html


def test_private_conversation_with_the_token_joins_and_passes_it_to_the_client(client, conversation):
    Conversation.objects.filter(pk=conversation.pk).update(require_auth=True, meeting_token="s3cret-token-123")
    r = client.get(f"/c/{conversation.pk}/?t=s3cret-token-123")
    assert r.status_code == 200
    assert page_config(r)["token"] == "s3cret-token-123"
    # The token is in the page's URL: it must not leak to other sites through Referer.
    assert r["Referrer-Policy"] == "same-origin"


def test_same_origin_only_by_default(client, conversation):
    r = client.get(f"/c/{conversation.pk}/")
    assert frame_ancestors(r) == ["'self'"]
    # X-Frame-Options would forbid every other origin whatever frame-ancestors says.
    assert "X-Frame-Options" not in r


def test_allowed_embed_origins_go_into_frame_ancestors_and_the_client(client, conversation, account):
    account_update_embed_origins(account=account, origins=["https://shop.example.com", "http://localhost:8765/"])
    r = client.get(f"/c/{conversation.pk}/")
    assert frame_ancestors(r) == ["'self'", "https://shop.example.com", "http://localhost:8765"]
    assert page_config(r)["allowed_origins"] == ["https://shop.example.com", "http://localhost:8765"]
    # Every page state carries the policy (an ended page embedded elsewhere still shows).
    Conversation.objects.filter(pk=conversation.pk).update(status=Conversation.Status.ENDED)
    assert frame_ancestors(client.get(f"/c/{conversation.pk}/")) == ["'self'", "https://shop.example.com", "http://localhost:8765"]


def test_malformed_origins_never_reach_the_header(client, conversation, account):
    # Written straight to the field (as the admin's JSON widget could), bypassing the service's validation.
    account.allowed_embed_origins = ["https://ok.example.com", "https://evil.example.com; script-src *",
                                     "https://a.example.com/path", "javascript:alert(1)", "https://*.partner.example"]
    account.save(update_fields=["allowed_embed_origins"])
    r = client.get(f"/c/{conversation.pk}/")
    assert frame_ancestors(r) == ["'self'", "https://ok.example.com", "https://*.partner.example"]
    assert "script-src" not in r["Content-Security-Policy"]


def test_other_accounts_origins_do_not_apply(client, conversation, other_account):
    account_update_embed_origins(account=other_account, origins=["https://other.example.com"])
    assert frame_ancestors(client.get(f"/c/{conversation.pk}/")) == ["'self'"]


def test_audio_only_and_captions_off_reach_the_client(client, account):
    face = make_face(account=account)
    conv = Conversation.objects.create(account=account, face=face, audio_only=True,
                                       properties={"enable_closed_captions": False})
    config = page_config(client.get(f"/c/{conv.pk}/"))
    assert config["audio_only"] is True and config["closed_captions"] is False


def test_client_scripts_are_served(client):
    # WhiteNoise serves /static/ (Daphne serves no files), cross-origin for embedding sites.
    for name in ("opencvi-client.js", "opencvi-embed.js"):
        r = client.get(f"/static/js/{name}")
        assert r.status_code == 200, name
        assert "javascript" in r["Content-Type"]
        assert r["Access-Control-Allow-Origin"] == "*"
        body = b"".join(r.streaming_content).decode()
        assert ("window.OpenCVI =" in body) if name == "opencvi-client.js" else ("window.OpenCVIEmbed" in body)
    assert client.get("/static/js/../settings.py").status_code == 404
    assert client.get("/static/js/other.js").status_code == 404
