"""The PAL Maker's Guardrails page (Django's test client): create one guardrail or a set through
the JSON editor with the API's errors shown, edit keeping uuids, delete refused while a PAL
links it, and the PAL editor's Guardrails fields choosing among the account's guardrails."""
from __future__ import annotations

import json

import pytest

from guardrails import services
from guardrails.api.serializers import guardrail_input, guardrail_set_input
from guardrails.models import Guardrail, GuardrailSet
from tests.guardrails.test_guardrails_api import ONE, SET

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(client, account):
    client.force_login(account)
    return client


def test_the_page_creates_one_guardrail_or_a_set(web, account):
    assert web.get("/guardrails/").status_code == 200
    r = web.post("/guardrails/", {"data": json.dumps(ONE)})
    assert r.status_code == 302 and Guardrail.objects.get(account=account).guardrail_name == "no_competitors"
    r = web.post("/guardrails/", {"data": json.dumps(SET["data"]), "name": "Clinic"})
    assert r.status_code == 302 and GuardrailSet.objects.get(account=account).name == "Clinic"
    html = web.get("/guardrails/").content.decode()
    assert "no_competitors" in html and "Clinic" in html and "check_if_alone" in html
    assert str(Guardrail.objects.get(guardrail_name="check_if_alone").uuid) in html


def test_the_editor_shows_the_api_errors(web, account):
    r = web.post("/guardrails/", {"data": json.dumps({"guardrail_name": "has space", "guardrail_prompt": "p"})})
    assert r.status_code == 400 and "guardrail_name: may hold only letters, digits and _" in r.content.decode()
    r = web.post("/guardrails/", {"data": "{"})
    assert r.status_code == 400 and "Not valid JSON" in r.content.decode()
    assert not Guardrail.objects.exists()


def test_editing_a_set_keeps_the_uuids_and_one_guardrail_its_fields(web, account):
    guardrail_set = services.guardrail_set_create(account=account, data=guardrail_set_input(SET))
    page = web.get(f"/guardrails/{guardrail_set.id}/").content.decode()
    before = {g.guardrail_name: g.uuid for g in guardrail_set.guardrails.all()}
    assert str(before["no_medical_advice"]) in page
    data = services.guardrail_set_representation(guardrail_set)["data"]
    data[0]["guardrail_prompt"] = "Never, ever give medical advice."
    r = web.post(f"/guardrails/{guardrail_set.id}/", {"data": json.dumps(data), "name": "Renamed"})
    assert r.status_code == 302
    row = Guardrail.objects.get(uuid=before["no_medical_advice"])
    assert row.guardrail_prompt == "Never, ever give medical advice." and row.guardrail_set.name == "Renamed"

    single = services.guardrail_create(account=account, data=guardrail_input(ONE))
    r = web.post(f"/guardrails/{single.uuid}/", {"data": json.dumps({**ONE, "modality": "visual"})})
    assert r.status_code == 302 and Guardrail.objects.get(pk=single.pk).modality == "visual"
    r = web.post(f"/guardrails/{single.uuid}/", {"data": json.dumps({**ONE, "guardrail_prompt": ""})})
    assert r.status_code == 400 and "guardrail_prompt" in r.content.decode()


def test_delete_is_refused_while_a_pal_links_it(web, account, other_account):
    from pals.services import pal_create

    single = services.guardrail_create(account=account, data=guardrail_input(ONE))
    pal = pal_create(account=account, data={"system_prompt": "p", "pal_name": "Sales",
                                            "guardrail_ids": [str(single.uuid)]})
    r = web.post(f"/guardrails/{single.uuid}/delete/", follow=True)
    assert "is used by PAL(s)" in r.content.decode() and Guardrail.objects.filter(pk=single.pk).exists()
    assert "Sales" in web.get(f"/guardrails/{single.uuid}/").content.decode()
    pal.delete()
    web.post(f"/guardrails/{single.uuid}/delete/")
    assert not Guardrail.objects.filter(pk=single.pk).exists()
    theirs = services.guardrail_create(account=other_account, data=guardrail_input(ONE))
    assert web.get(f"/guardrails/{theirs.uuid}/").status_code == 404


def test_the_pal_editor_links_the_accounts_guardrails(web, account, other_account):
    from pals.models import Pal
    from tests.web.test_pages import editor_post

    single = services.guardrail_create(account=account, data=guardrail_input(ONE))
    guardrail_set = services.guardrail_set_create(account=account, data=guardrail_set_input(SET))
    theirs = services.guardrail_create(account=other_account, data=guardrail_input(ONE))
    html = web.get("/pals/new/").content.decode()
    assert f'value="{single.uuid}"' in html and f'value="{guardrail_set.id}"' in html and str(theirs.uuid) not in html
    r = web.post("/pals/new/", editor_post(guardrail_ids=[str(single.uuid)], guardrails_id=guardrail_set.id))
    assert r.status_code == 302, r.content.decode()[:3000]
    pal = Pal.objects.get(account=account)
    assert pal.guardrail_ids == [str(single.uuid)] and pal.guardrails_id == guardrail_set.id
    edit = web.get(f"/pals/{pal.id}/").content.decode()
    assert f'<option value="{single.uuid}" selected>' in edit
    r = web.post(f"/pals/{pal.id}/", editor_post(guardrail_ids=[]))
    assert r.status_code == 302 and Pal.objects.get(pk=pal.pk).guardrail_ids == []
    assert Pal.objects.get(pk=pal.pk).guardrails_id == ""
