"""/v2/objectives as the hosted docs write the requests: create, get, list, JSON Patch, delete;
the graph rules with their 400s; account scoping; a PAL linking a set, and what a call reads."""
from __future__ import annotations

import json

import pytest

from tests.factories import make_face

pytestmark = pytest.mark.django_db

#: the hosted docs' intake example, made a whole graph: a start with a conditional branch
HOSTED = [
    {"objective_name": "ask_if_new_patient",
     "objective_prompt": "Ask the patient if they are new or have been here before",
     "confirmation_mode": "auto", "output_variables": ["patient_status"], "modality": "verbal",
     "next_conditional_objectives": {
         "new_patient_intake_process": "If the patient has never been to the practice before",
         "existing_patient_intake_process": "If the patient has been to the practice before"},
     "callback_url": "https://hooks.example.com/objectives"},
    {"objective_name": "new_patient_intake_process", "objective_prompt": "Ask for their name and date of birth",
     "output_variables": ["name", "date_of_birth"], "next_required_objectives": ["get_reason"]},
    {"objective_name": "existing_patient_intake_process", "objective_prompt": "Ask for their patient number",
     "confirmation_mode": "manual", "next_required_objectives": ["get_reason"]},
    {"objective_name": "get_reason", "objective_prompt": "Ask why they are visiting today",
     "output_variables": ["reason"]},
]


def create(api, data=None):
    return api.post("/v2/objectives", {"data": HOSTED if data is None else data}, format="json")


def patch(api, objectives_id, operations):
    return api.patch(f"/v2/objectives/{objectives_id}", data=json.dumps(operations),
                     content_type="application/json-patch+json")


def test_create_get_list_as_the_hosted_docs_write_them(api):
    r = create(api)
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == {"objectives_id", "objective_name", "status", "created_at"}
    assert body["objectives_id"].startswith("o") and body["status"] == "active"
    assert body["objective_name"] == "ask_if_new_patient"  # the start objective

    got = api.get(f"/v2/objectives/{body['objectives_id']}").json()
    assert [o["objective_name"] for o in got["data"]] == [o["objective_name"] for o in HOSTED]
    first, third = got["data"][0], got["data"][2]
    assert first["next_conditional_objectives"] == HOSTED[0]["next_conditional_objectives"]
    assert first["next_required_objectives"] == [] and first["callback_url"] == "https://hooks.example.com/objectives"
    assert third["confirmation_mode"] == "manual" and third["output_variables"] == [] and third["modality"] == "verbal"
    assert third["callback_url"] is None

    create(api, [{"objective_name": "only", "objective_prompt": "p"}])
    listed = api.get("/v2/objectives?limit=1&page=2").json()
    assert listed["total_count"] == 2 and len(listed["data"]) == 1
    assert listed["data"][0]["objectives_id"] == body["objectives_id"]  # newest first


def test_the_hosted_variants_a_bare_array_and_next_required_objective(api):
    r = api.post("/v2/objectives", [{"objective_name": "a", "objective_prompt": "p", "next_required_objective": "b"},
                                    {"objective_name": "b", "objective_prompt": "q"}], format="json")
    assert r.status_code == 200, r.content
    got = api.get(f"/v2/objectives/{r.json()['objectives_id']}").json()
    assert got["data"][0]["next_required_objectives"] == ["b"]


def _one(**fields):
    return [{"objective_name": "a", "objective_prompt": "p", **fields}]


@pytest.mark.parametrize("data, expected", [
    (_one(objective_name="has space"), "data.0.objective_name: must have no spaces"),
    (_one(objective_prompt=""), "data.0.objective_prompt"),
    ([{"objective_name": "a"}], "data.0.objective_prompt"),
    (_one(confirmation_mode="sometimes"), "data.0.confirmation_mode"),
    (_one(modality="visual"), "transcript only"),
    (_one(callback_url="ftp://files.example/x"), "data.0.callback_url"),
    (_one(output_variables=["x", "x"]), "data.0.output_variables"),
    (_one(colour="blue"), "unknown objective field(s) colour"),
    (_one(next_required_objectives=["nowhere"]), "data.0.next_required_objectives: 'nowhere' is not an objective"),
    (_one(next_conditional_objectives={"nowhere": "if so"}), "'nowhere' is not an objective of this set"),
    (_one(next_required_objectives=["a"]), "cannot follow itself"),
    (_one(next_conditional_objectives={"b": " "}), "next_conditional_objectives.b: This field may not be blank"),
    (_one(next_required_objectives=["b"], next_conditional_objectives={"b": "if so"}) +
     [{"objective_name": "b", "objective_prompt": "q"}], "not both"),
    (_one() + [{"objective_name": "a", "objective_prompt": "again"}], "data.1.objective_name: 'a' is already"),
    ([{"objective_name": "a", "objective_prompt": "p", "next_required_objectives": ["b"]},
      {"objective_name": "b", "objective_prompt": "q", "next_required_objectives": ["a"]}], "no start objective"),
    ([{"objective_name": "s", "objective_prompt": "p", "next_required_objectives": ["a"]},
      {"objective_name": "a", "objective_prompt": "p", "next_required_objectives": ["b"]},
      {"objective_name": "b", "objective_prompt": "q", "next_required_objectives": ["a"]}], "cycle (a → b → a)"),
    ([], "data"),
    ("not a list", "data"),
])
def test_bad_objectives_are_400s_that_name_the_field(api, data, expected):
    r = create(api, data)
    assert r.status_code == 400 and expected in r.json()["error"], r.json()


def test_a_private_callback_url_is_refused_while_private_urls_are_off(api):
    from cvi_site import netguard

    netguard.configure(allow_private=False)
    try:
        r = create(api, _one(callback_url="http://127.0.0.1:8000/hook"))
    finally:
        netguard.configure(allow_private=True)
    assert r.status_code == 400 and "data.0.callback_url" in r.json()["error"], r.json()


def test_another_account_sees_none_of_it(api, other_api):
    objectives_id = create(api).json()["objectives_id"]
    assert other_api.get(f"/v2/objectives/{objectives_id}").status_code == 404
    assert patch(other_api, objectives_id, [{"op": "remove", "path": "/data/1"}]).status_code == 404
    assert other_api.delete(f"/v2/objectives/{objectives_id}").status_code == 404
    assert other_api.get("/v2/objectives").json() == {"data": [], "total_count": 0}
    assert api.get(f"/v2/objectives/{objectives_id}").status_code == 200


def test_json_patch_edits_the_set_and_keeps_it_a_valid_graph(api):
    objectives_id = create(api).json()["objectives_id"]
    r = patch(api, objectives_id, [
        {"op": "replace", "path": "/data/0/objective_prompt", "value": "Ask if they are new here"},
        {"op": "add", "path": "/data/3/output_variables/-", "value": "urgency"}])
    assert r.status_code == 200, r.content
    assert r.json()["data"][0]["objective_prompt"] == "Ask if they are new here"
    assert r.json()["data"][3]["output_variables"] == ["reason", "urgency"]

    # a patch that would break the graph changes nothing
    r = patch(api, objectives_id, [{"op": "add", "path": "/data/3/next_required_objectives", "value": [
        "ask_if_new_patient"]}])
    assert r.status_code == 400 and "no start objective" in r.json()["error"], r.json()
    r = patch(api, objectives_id, [{"op": "remove", "path": "/data/1"}])
    assert r.status_code == 400 and "'new_patient_intake_process' is not an objective" in r.json()["error"]
    assert patch(api, objectives_id, [{"op": "replace", "path": "/objectives_id", "value": "o1"}]).status_code == 400
    assert patch(api, objectives_id, [{"op": "remove", "path": "/nothing"}]).status_code == 400
    assert patch(api, objectives_id, []).status_code == 400
    stored = api.get(f"/v2/objectives/{objectives_id}").json()["data"]
    assert stored[0]["objective_prompt"] == "Ask if they are new here"


def test_hosted_top_level_paths_address_a_set_of_one(api):
    one = create(api, _one()).json()["objectives_id"]
    r = patch(api, one, [{"op": "replace", "path": "/objective_prompt", "value": "Updated prompt"},
                         {"op": "remove", "path": "/callback_url"}])
    assert r.status_code == 200 and r.json()["data"][0]["objective_prompt"] == "Updated prompt", r.content
    many = create(api).json()["objectives_id"]
    r = patch(api, many, [{"op": "replace", "path": "/objective_prompt", "value": "?"}])
    assert r.status_code == 400 and "/data/<index>/objective_prompt" in r.json()["error"]


def test_a_pal_links_a_set_and_a_call_reads_it(api, other_api, account):
    from conversations.models import Conversation

    objectives_id = create(api).json()["objectives_id"]
    theirs = create(other_api, _one()).json()["objectives_id"]
    for unknown in ("o000000000000", theirs):
        r = api.post("/v2/pals", {"system_prompt": "p", "objectives_id": unknown}, format="json")
        assert r.status_code == 400 and f"objectives_id: no objectives {unknown!r}" in r.json()["error"]

    face = make_face(account=account)
    r = api.post("/v2/personas", {"system_prompt": "p", "objectives_id": objectives_id, "default_replica_id": face.id},
                 format="json")
    assert r.status_code == 200 and r.json()["objectives_id"] == objectives_id, r.content
    pal_id = r.json()["pal_id"]
    conversation_id = api.post("/v2/conversations", {"persona_id": pal_id, "test_mode": True},
                               format="json").json()["conversation_id"]
    snapshot = Conversation.objects.get(pk=conversation_id).pal_snapshot
    assert set(snapshot["objectives"]) == {"objectives_id", "data"}
    assert snapshot["objectives"]["objectives_id"] == objectives_id
    assert snapshot["objectives"]["data"] == api.get(f"/v2/objectives/{objectives_id}").json()["data"]
    assert snapshot["guardrails"] == []

    # a PAL without objectives: None
    plain = api.post("/v2/pals", {"system_prompt": "p", "default_face_id": face.id}, format="json").json()["pal_id"]
    conversation_id = api.post("/v2/conversations", {"pal_id": plain, "test_mode": True},
                               format="json").json()["conversation_id"]
    assert Conversation.objects.get(pk=conversation_id).pal_snapshot["objectives"] is None


def test_deleting_a_set_a_pal_uses_is_a_409_naming_the_pal(api):
    objectives_id = create(api).json()["objectives_id"]
    pal_id = api.post("/v2/pals", {"system_prompt": "p", "pal_name": "Intake", "objectives_id": objectives_id},
                      format="json").json()["pal_id"]
    r = api.delete(f"/v2/objectives/{objectives_id}")
    assert r.status_code == 409 and pal_id in r.json()["error"] and "Intake" in r.json()["error"], r.content
    r = api.patch(f"/v2/pals/{pal_id}", data=json.dumps([{"op": "replace", "path": "/objectives_id", "value": None}]),
                  content_type="application/json-patch+json")
    assert r.status_code == 200 and r.json()["objectives_id"] is None, r.content
    assert api.delete(f"/v2/objectives/{objectives_id}").status_code == 204
    assert api.get(f"/v2/objectives/{objectives_id}").status_code == 404


def test_the_schema_documents_the_endpoints(api):
    import yaml

    schema = yaml.safe_load(api.get("/v2/openapi.yaml").content)
    paths = {path.rstrip("/"): item for path, item in schema["paths"].items()}
    assert {"get", "post"} <= set(paths["/v2/objectives"])
    one = paths["/v2/objectives/{objectives_id}"]
    assert {"get", "patch", "delete"} <= set(one) and "409" in one["delete"]["responses"]


def test_an_echo_pal_cannot_link_objectives_or_guardrails(api, account):
    """Echo mode has no LLM to steer or to check: linking them there would do nothing, so it is refused."""
    from tests.factories import make_face

    face = make_face(account=account)
    objectives = api.post("/v2/objectives", {"data": [{"objective_name": "greet", "objective_prompt": "Say hi."}]},
                          format="json").json()["objectives_id"]
    guardrail = api.post("/v2/guardrails", {"guardrail_name": "no_weather",
                                            "guardrail_prompt": "Never talk about the weather."}, format="json").json()
    base = {"pal_name": "Echo", "pipeline_mode": "echo", "default_face_id": face.id}
    for extra, named in (({"objectives_id": objectives}, "objectives_id"),
                         ({"guardrail_ids": [guardrail["guardrail_uuid"]]}, "guardrail_ids")):
        r = api.post("/v2/pals", {**base, **extra}, format="json")
        assert r.status_code == 400 and named in str(r.json()), r.json()
    full = api.post("/v2/pals", {**base, "pipeline_mode": "full", "system_prompt": "You are Echo.",
                                 "objectives_id": objectives}, format="json")
    assert full.status_code == 200, full.json()
    r = api.patch(f"/v2/pals/{full.json()['pal_id']}", [{"op": "replace", "path": "/pipeline_mode", "value": "echo"}],
                  format="json")
    assert r.status_code == 400 and "objectives_id" in str(r.json())
