"""The PAL Maker's Objectives page (Django's test client): the graph drawn readably, create and
edit through the JSON editor with the API's errors shown, delete refused while a PAL uses the set,
and the PAL editor's Objectives field choosing among the account's sets."""
from __future__ import annotations

import json
import re

import pytest

from objectives import services
from objectives.api.serializers import objectives_input
from objectives.models import ObjectiveSet
from tests.objectives.test_objectives_api import HOSTED

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(client, account):
    client.force_login(account)
    return client


def test_the_page_creates_a_set_and_draws_its_graph(web, account):
    page = web.get("/objectives/")
    assert page.status_code == 200 and "New objectives" in page.content.decode()
    assert 'aria-current="page"' in page.content.decode().split("Objectives</a>")[0].rsplit("<a", 1)[1]
    r = web.post("/objectives/", {"data": json.dumps(HOSTED)})
    objective_set = ObjectiveSet.objects.get(account=account)
    assert r.status_code == 302 and r["Location"] == f"/objectives/{objective_set.id}/"
    html = web.get(r["Location"]).content.decode()
    text = re.sub(r"<[^>]+>", "", html)
    assert re.search(r"Starts with\s*ask_if_new_patient", text)
    assert "if the patient has never been to the practice before → new_patient_intake_process" in text
    assert "then → get_reason" in text and "Collects: name, date_of_birth" in text
    assert "confirmed by your app" in text  # the manual objective
    assert f"{objective_set.id}" in web.get("/objectives/").content.decode()


def test_the_editor_shows_the_api_errors_and_keeps_the_text(web, account):
    r = web.post("/objectives/", {"data": "[{oops"})
    assert r.status_code == 400 and "Not valid JSON" in r.content.decode()
    bad = [{"objective_name": "a b", "objective_prompt": "p"}]
    r = web.post("/objectives/", {"data": json.dumps(bad)})
    assert r.status_code == 400 and "data.0.objective_name: must have no spaces" in r.content.decode()
    assert "a b" in r.content.decode() and not ObjectiveSet.objects.exists()

    objective_set = services.objectives_create(account=account, data=objectives_input(HOSTED))
    edited = [dict(HOSTED[3], objective_prompt="Ask what brings them in")]
    r = web.post(f"/objectives/{objective_set.id}/", {"data": json.dumps(edited)})
    assert r.status_code == 302
    assert services.objectives_representation(objective_set)["data"][0]["objective_prompt"] == "Ask what brings them in"
    cyclic = [{"objective_name": "a", "objective_prompt": "p", "next_required_objectives": ["a"]}]
    r = web.post(f"/objectives/{objective_set.id}/", {"data": json.dumps(cyclic)})
    assert r.status_code == 400 and "cannot follow itself" in r.content.decode()


def test_delete_is_refused_while_a_pal_uses_the_set(web, account, other_account):
    from pals.services import pal_create

    objective_set = services.objectives_create(account=account, data=objectives_input(HOSTED))
    pal = pal_create(account=account, data={"system_prompt": "p", "pal_name": "Intake",
                                            "objectives_id": objective_set.id})
    r = web.post(f"/objectives/{objective_set.id}/delete/", follow=True)
    assert "is used by PAL(s)" in r.content.decode() and ObjectiveSet.objects.filter(pk=objective_set.id).exists()
    assert "Intake" in web.get(f"/objectives/{objective_set.id}/").content.decode()  # "Used by"
    pal.delete()
    web.post(f"/objectives/{objective_set.id}/delete/")
    assert not ObjectiveSet.objects.filter(pk=objective_set.id).exists()
    theirs = services.objectives_create(account=other_account, data=objectives_input(HOSTED))
    assert web.get(f"/objectives/{theirs.id}/").status_code == 404
    assert web.post(f"/objectives/{theirs.id}/delete/").status_code == 404


def test_the_pal_editor_links_one_of_the_accounts_sets(web, account, other_account):
    from pals.models import Pal
    from tests.web.test_pages import editor_post

    mine = services.objectives_create(account=account, data=objectives_input(HOSTED))
    theirs = services.objectives_create(account=other_account, data=objectives_input(HOSTED))
    html = web.get("/pals/new/").content.decode()
    assert f'value="{mine.id}"' in html and theirs.id not in html and "not supported yet" not in html.lower()
    r = web.post("/pals/new/", editor_post(objectives_id=mine.id))
    assert r.status_code == 302, r.content.decode()[:3000]
    pal = Pal.objects.get(account=account)
    assert pal.objectives_id == mine.id
    assert re.search(rf'<option value="{mine.id}" selected>', web.get(f"/pals/{pal.id}/").content.decode())
    r = web.post("/pals/new/", editor_post(objectives_id=theirs.id))
    assert r.status_code == 400 and Pal.objects.filter(account=account).count() == 1
