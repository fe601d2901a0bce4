"""Django admin smoke tests: every model's changelist (with search and filters), change page
and actions; saves go through the services, so the API's rules hold in the admin too."""
from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from conversations.models import Conversation, ConversationEvent, Utterance
from conversations.services import conversation_create, event_record, utterance_record
from cvi_site.models import Account, ApiKey
from cvi_site.services import api_key_create
from faces.models import Face
from pals.models import Pal
from tests.factories import make_face, make_pal

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, db):
    from cvi_site.services import account_create

    admin = account_create(username="operator", password="operator-pass-123", is_staff=True)
    client.force_login(admin)
    return client


@pytest.fixture
def world(account):
    """One of everything, owned by ``account``."""
    face = make_face(account=account, name="Ada's face")
    pal = make_pal(account=account, face=face, name="Ada", layers={
        "llm": {"base_url": "https://llm.example.com/v1", "model": "big", "api_key": "sk-admin-secret-98765"}})
    conversation = conversation_create(account=account, data={"pal_id": pal.id, "require_auth": True,
                                                              "conversation_name": "Demo call"})
    utterance_record(conversation_id=conversation.id, role="user", content="Hello there", seconds_from_start=1)
    utterance_record(conversation_id=conversation.id, role="assistant", content="Hi! How can I help?",
                     seconds_from_start=2, latency={"turn_decided_ms": 500, "llm_first_token_ms": 700,
                                                    "tts_first_audio_ms": 900, "u2u_ms": 950})
    event_record(conversation=conversation, message_type="system", event_type="system.replica_joined",
                 properties={"replica_id": face.id})
    key = api_key_create(account=account, name="server").api_key
    return {"face": face, "pal": pal, "conversation": conversation, "key": key, "account": account}


MODELS = [
    ("cvi_site", "account", Account, "alice"),
    ("cvi_site", "apikey", ApiKey, "server"),
    ("pals", "pal", Pal, "Ada"),
    ("faces", "face", Face, "Ada"),
    ("conversations", "conversation", Conversation, "Demo"),
    ("conversations", "utterance", Utterance, "Hello"),
    ("conversations", "conversationevent", ConversationEvent, "replica_joined"),
]


@pytest.mark.parametrize("app, model, cls, query", MODELS, ids=[m[1] for m in MODELS])
def test_changelist_search_and_change_page(staff, world, app, model, cls, query):
    changelist = reverse(f"admin:{app}_{model}_changelist")
    r = staff.get(changelist)
    assert r.status_code == 200
    searched = staff.get(changelist, {"q": query})
    assert searched.status_code == 200 and "0 results" not in searched.content.decode()
    obj = cls.objects.filter(**({"account": world["account"]} if hasattr(cls, "account") and model != "account"
                                else {})).first() if model != "account" else world["account"]
    if model == "utterance":
        obj = Utterance.objects.first()
    if model == "conversationevent":
        obj = ConversationEvent.objects.first()
    change = staff.get(reverse(f"admin:{app}_{model}_change", args=[obj.pk]))
    assert change.status_code == 200


def test_list_filters_work(staff, world):
    for url, params in (("admin:faces_face_changelist", {"status__exact": "ready"}),
                        ("admin:conversations_conversation_changelist", {"status__exact": "active"}),
                        ("admin:pals_pal_changelist", {"account__isempty": "1"}),
                        ("admin:cvi_site_apikey_changelist", {"revoked_at__isempty": "1"})):
        assert staff.get(reverse(url), params).status_code == 200, url


def test_pal_change_page_masks_secrets_and_keeps_them_on_save(staff, world):
    pal = world["pal"]
    url = reverse("admin:pals_pal_change", args=[pal.pk])
    html = staff.get(url).content.decode()
    assert "sk-admin-secret-98765" not in html and "****8765" in html
    layers = json.loads(re.search(r'<textarea name="layers"[^>]*>(.*?)</textarea>', html, re.S).group(1)
                        .replace("&quot;", '"'))
    layers["llm"]["model"] = "bigger"
    r = staff.post(url, _pal_post(pal, layers=layers))
    assert r.status_code == 302, _errors(r)
    pal.refresh_from_db()
    assert pal.layers["llm"]["model"] == "bigger" and pal.layers["llm"]["api_key"] == "sk-admin-secret-98765"


def test_the_admin_enforces_the_api_rules(staff, world, api):
    pal = world["pal"]
    bad = {"llm": {"base_url": "ftp://nowhere", "model": "m"}}
    api_error = api.post("/v2/pals", {"pal_name": "x", "system_prompt": "x", "layers": bad}, format="json").json()["error"]
    r = staff.post(reverse("admin:pals_pal_change", args=[pal.pk]), _pal_post(pal, layers=bad))
    assert r.status_code == 200
    assert "must be an http(s) URL" in _errors(r) and "must be an http(s) URL" in api_error
    pal.refresh_from_db()
    assert pal.layers["llm"]["base_url"] == "https://llm.example.com/v1"  # unchanged


def test_add_a_pal_in_the_admin_goes_through_the_service(staff, world):
    data = _pal_post(world["pal"], layers={"conversational_flow": {"turn_taking_patience": "high"}})
    data.update(pal_name="Added in admin", account=str(world["account"].pk))
    r = staff.post(reverse("admin:pals_pal_add"), data)
    assert r.status_code == 302, _errors(r)
    added = Pal.objects.get(pal_name="Added in admin")
    assert added.account_id == world["account"].pk
    assert added.layers == {"conversational_flow": {"turn_taking_patience": "high"}}


def test_stock_pal_is_view_only(staff):
    url = reverse("admin:pals_pal_change", args=["pstock000001"])
    html = staff.get(url).content.decode()
    assert 'name="_save"' not in html
    assert staff.post(url, {"pal_name": "Hijack"}).status_code == 403


def test_duplicate_action(staff, world):
    staff.post(reverse("admin:pals_pal_changelist"), {"action": "duplicate", "_selected_action": [world["pal"].pk]})
    assert Pal.objects.filter(pal_name="Ada (copy)", account=world["account"]).exists()


def test_retrain_face_action(staff, world, monkeypatch, django_capture_on_commit_callbacks):
    jobs = []
    monkeypatch.setattr("faces.tasks.face_training_start.delay", lambda face_id: jobs.append(face_id))
    face = world["face"]
    Face.objects.filter(pk=face.pk).update(status=Face.Status.ERROR, train_image_url="https://example.com/a.jpg")
    with django_capture_on_commit_callbacks(execute=True):
        r = staff.post(reverse("admin:faces_face_changelist"), {"action": "retrain", "_selected_action": [face.pk]},
                       follow=True)
    assert "Retraining 1 face(s)." in r.content.decode()
    assert jobs == [face.pk] and Face.objects.get(pk=face.pk).status == Face.Status.STARTED
    # already training: refused with the service's reason, not silently
    r = staff.post(reverse("admin:faces_face_changelist"), {"action": "retrain", "_selected_action": [face.pk]},
                   follow=True)
    assert "already being trained" in r.content.decode()


def test_rename_face_in_the_admin(staff, world):
    face = world["face"]
    r = staff.post(reverse("admin:faces_face_change", args=[face.pk]), {"face_name": "Renamed by operator"})
    assert r.status_code == 302
    assert Face.objects.get(pk=face.pk).face_name == "Renamed by operator"


def test_conversation_page_has_transcript_events_and_masked_token(staff, world):
    c = world["conversation"]
    html = staff.get(reverse("admin:conversations_conversation_change", args=[c.pk])).content.decode()
    assert "Hello there" in html and "Hi! How can I help?" in html and "system.replica_joined" in html
    assert c.meeting_token not in html and "****" + c.meeting_token[-4:] in html
    assert "sk-admin-secret-98765" not in html  # the PAL snapshot's key is masked too
    assert "turn 500" in html and "u2u 950" in html


def test_end_conversation_action(staff, world):
    c = world["conversation"]
    r = staff.post(reverse("admin:conversations_conversation_changelist"),
                   {"action": "end_conversations", "_selected_action": [c.pk]}, follow=True)
    assert "Ended 1 conversation(s)." in r.content.decode()
    c.refresh_from_db()
    assert c.status == Conversation.Status.ENDED and c.shutdown_reason == "end_conversation_endpoint_hit"
    assert c.events.filter(event_type="system.shutdown").exists()


def test_revoke_key_action(staff, world):
    key = world["key"]
    staff.post(reverse("admin:cvi_site_apikey_changelist"), {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_create_key_action_shows_the_key_once(staff, world):
    r = staff.post(reverse("admin:cvi_site_account_changelist"),
                   {"action": "create_api_key", "_selected_action": [world["account"].pk]}, follow=True)
    assert re.search(r"New key for alice: cvi_\S+", r.content.decode())


def _pal_post(pal: Pal, *, layers: dict) -> dict:
    return {"pal_name": pal.pal_name, "system_prompt": pal.system_prompt, "context": "", "greeting": "",
            "pipeline_mode": "full", "default_face_id": pal.default_face_id or "", "objectives_id": "",
            "layers": json.dumps(layers), "document_ids": "[]", "document_tags": "[]", "guardrail_ids": "[]"}


def _errors(response) -> str:
    return " | ".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S))
