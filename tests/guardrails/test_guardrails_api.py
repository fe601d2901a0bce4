"""/v2/guardrails as the hosted docs write the requests: one guardrail (``guardrail_name`` at the
top) or a legacy set (``name`` + ``data``), get, list (``legacy``), JSON Patch, delete; the 400s;
account scoping; PALs linking guardrails (``guardrail_ids``) and sets (``guardrails_id``), and what a
call reads."""
from __future__ import annotations

import json
import uuid

import pytest

from tests.factories import make_face

pytestmark = pytest.mark.django_db

SET = {"name": "Healthcare Compliance Guardrails", "data": [
    {"guardrail_name": "no_medical_advice", "guardrail_prompt": "Never provide medical advice.",
     "modality": "verbal", "callback_url": "https://hooks.example.com/guardrails"},
    {"guardrail_name": "check_if_alone", "guardrail_prompt": "The person must be alone on camera.",
     "modality": "visual", "tags": ["privacy"], "app_message": False},
]}
ONE = {"guardrail_name": "no_competitors", "guardrail_prompt": "Never discuss competitors' products.",
       "tags": ["sales"]}


def patch(api, key, operations):
    return api.patch(f"/v2/guardrails/{key}", data=json.dumps(operations), content_type="application/json-patch+json")


def test_a_set_as_the_hosted_legacy_docs_write_it(api):
    r = api.post("/v2/guardrails", SET, format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["guardrails_id"].startswith("g") and body["guardrails_name"] == SET["name"]
    assert body["status"] == "active" and body["created_at"]
    first, second = body["data"]
    uuid.UUID(first["guardrail_uuid"]), uuid.UUID(second["guardrail_uuid"])
    assert first["app_message"] is True and first["tags"] == [] and first["callback_url"].startswith("https://")
    assert second["modality"] == "visual" and second["app_message"] is False and second["callback_url"] is None

    assert api.get(f"/v2/guardrails/{body['guardrails_id']}").json()["data"] == body["data"]
    # every item of a set is a guardrail of its own too
    item = api.get(f"/v2/guardrails/{first['guardrail_uuid']}").json()
    assert item["guardrail_name"] == "no_medical_advice" and item["guardrails_id"] == body["guardrails_id"]
    listed = api.get("/v2/guardrails").json()
    assert listed["total_count"] == 1 and listed["data"][0]["guardrails_id"] == body["guardrails_id"]
    flat = api.get("/v2/guardrails?legacy=false").json()
    assert flat["total_count"] == 2 and {g["guardrail_name"] for g in flat["data"]} == {"no_medical_advice",
                                                                                       "check_if_alone"}
    assert api.get("/v2/guardrails?legacy=maybe").status_code == 400


def test_one_guardrail_of_its_own(api):
    r = api.post("/v2/guardrails", ONE, format="json")
    assert r.status_code == 200, r.content
    g = r.json()
    assert g["guardrails_id"] is None and g["modality"] == "verbal" and g["app_message"] is True
    assert g["tags"] == ["sales"]
    assert api.get(f"/v2/guardrails/{g['guardrail_uuid']}").json() == g
    assert api.get("/v2/guardrails?legacy=false").json()["total_count"] == 1
    assert api.get("/v2/guardrails").json()["total_count"] == 0  # no set


def _set(**fields):
    return {"data": [{"guardrail_name": "rule", "guardrail_prompt": "p", **fields}]}


@pytest.mark.parametrize("body, expected", [
    (_set(guardrail_name="no spaces please"), "data.0.guardrail_name: may hold only letters, digits and _"),
    (_set(guardrail_name="x" * 101), "data.0.guardrail_name"),
    (_set(guardrail_prompt="x" * 1001), "data.0.guardrail_prompt"),
    (_set(modality="smell"), "data.0.modality"),
    (_set(callback_url="javascript:alert(1)"), "data.0.callback_url"),
    (_set(app_message="loud"), "data.0.app_message"),
    (_set(tags="one"), "data.0.tags"),
    (_set(priority=1), "unknown guardrail field(s) priority"),
    ({"data": _set()["data"] * 2}, "data.1.guardrail_name: 'rule' is already"),
    ({"data": []}, "data"),
    ({"name": "only a name"}, "data"),
    ({"guardrail_name": "one"}, "guardrail_prompt"),
    ({"guardrail_name": "bad-name", "guardrail_prompt": "p"}, "guardrail_name"),
    ({}, "guardrail_name"),
])
def test_bad_guardrails_are_400s_that_name_the_field(api, body, expected):
    r = api.post("/v2/guardrails", body, format="json")
    assert r.status_code == 400 and expected in r.json()["error"], r.json()


def test_another_account_sees_none_of_it(api, other_api):
    body = api.post("/v2/guardrails", SET, format="json").json()
    single = api.post("/v2/guardrails", ONE, format="json").json()["guardrail_uuid"]
    for key in (body["guardrails_id"], body["data"][0]["guardrail_uuid"], single):
        assert other_api.get(f"/v2/guardrails/{key}").status_code == 404
        assert patch(other_api, key, [{"op": "replace", "path": "/guardrails_name", "value": "x"}]).status_code == 404
        assert other_api.delete(f"/v2/guardrails/{key}").status_code == 404
    assert other_api.get("/v2/guardrails?legacy=false").json()["total_count"] == 0
    assert api.get(f"/v2/guardrails/{single}").status_code == 200


def test_json_patch_on_a_set_keeps_each_uuid_and_on_one_guardrail(api):
    body = api.post("/v2/guardrails", SET, format="json").json()
    key, (first, second) = body["guardrails_id"], body["data"]
    r = patch(api, key, [{"op": "replace", "path": "/data/0/guardrail_prompt", "value": "No medical advice, ever."},
                         {"op": "move", "from": "/data/1", "path": "/data/0"},
                         {"op": "add", "path": "/data/-", "value": {"guardrail_name": "be_kind",
                                                                    "guardrail_prompt": "Be kind."}},
                         {"op": "replace", "path": "/guardrails_name", "value": "Clinic"}])
    assert r.status_code == 200, r.content
    data = r.json()["data"]
    assert [g["guardrail_uuid"] for g in data[:2]] == [second["guardrail_uuid"], first["guardrail_uuid"]]
    assert data[1]["guardrail_prompt"] == "No medical advice, ever." and data[2]["guardrail_name"] == "be_kind"
    assert r.json()["guardrails_name"] == "Clinic"
    # a whole-object replace without the uuid makes a new guardrail
    r = patch(api, key, [{"op": "replace", "path": "/data/2", "value": {"guardrail_name": "be_kind",
                                                                      "guardrail_prompt": "Be very kind."}}])
    assert r.status_code == 200 and r.json()["data"][2]["guardrail_uuid"] != data[2]["guardrail_uuid"]
    assert api.get(f"/v2/guardrails/{data[2]['guardrail_uuid']}").status_code == 404
    # bad patches change nothing
    for bad in ([{"op": "replace", "path": "/data/0/guardrail_name", "value": "no_medical_advice"}],
                [{"op": "replace", "path": "/data/0/guardrail_uuid", "value": str(uuid.uuid4())}],
                [{"op": "replace", "path": "/guardrails_id", "value": "g1"}],
                [{"op": "remove", "path": "/data/0"}, {"op": "remove", "path": "/data/0"},
                 {"op": "remove", "path": "/data/0"}],
                "not a patch"):
        assert patch(api, key, bad).status_code == 400, bad
    assert [g["guardrail_name"] for g in api.get(f"/v2/guardrails/{key}").json()["data"]] == [
        "check_if_alone", "no_medical_advice", "be_kind"]

    single = api.post("/v2/guardrails", ONE, format="json").json()["guardrail_uuid"]
    r = patch(api, single, [{"op": "replace", "path": "/modality", "value": "visual"},
                            {"op": "replace", "path": "/app_message", "value": False}])
    assert r.status_code == 200 and r.json()["modality"] == "visual" and r.json()["app_message"] is False
    assert patch(api, single, [{"op": "replace", "path": "/guardrail_uuid", "value": str(uuid.uuid4())}]
                 ).status_code == 400
    # an item of a set renamed on its own keeps the set's names unique
    r = patch(api, first["guardrail_uuid"], [{"op": "replace", "path": "/guardrail_name", "value": "be_kind"}])
    assert r.status_code == 400 and "already a guardrail of set" in r.json()["error"]


def test_pals_link_guardrails_and_sets_and_a_call_reads_them(api, other_api, account):
    from conversations.models import Conversation

    body = api.post("/v2/guardrails", SET, format="json").json()
    single = api.post("/v2/guardrails", ONE, format="json").json()
    theirs = other_api.post("/v2/guardrails", ONE, format="json").json()["guardrail_uuid"]
    for field, value, named in (("guardrail_ids", [theirs], theirs), ("guardrail_ids", ["g1"], "g1"),
                                ("guardrail_ids", [str(uuid.uuid4())], ""), ("guardrails_id", "g000000000000",
                                                                            "g000000000000")):
        r = api.post("/v2/pals", {"system_prompt": "p", field: value}, format="json")
        assert r.status_code == 400 and field in r.json()["error"] and named in r.json()["error"], r.json()

    face = make_face(account=account)
    r = api.post("/v2/personas", {"system_prompt": "p", "default_replica_id": face.id,
                                  "guardrail_ids": [single["guardrail_uuid"], body["data"][1]["guardrail_uuid"]],
                                  "guardrails_id": body["guardrails_id"]}, format="json")
    assert r.status_code == 200, r.content
    pal = r.json()
    assert pal["guardrails_id"] == body["guardrails_id"] and len(pal["guardrail_ids"]) == 2
    conversation_id = api.post("/v2/conversations", {"persona_id": pal["pal_id"], "test_mode": True},
                               format="json").json()["conversation_id"]
    guardrails = Conversation.objects.get(pk=conversation_id).pal_snapshot["guardrails"]
    # the named ones in order, then the rest of the set, each once
    assert [g["guardrail_name"] for g in guardrails] == ["no_competitors", "check_if_alone", "no_medical_advice"]
    assert all(set(g) == {"guardrail_uuid", "guardrail_name", "guardrail_prompt", "modality", "callback_url", "tags",
                          "app_message", "guardrails_id"} for g in guardrails)
    assert guardrails[0]["guardrails_id"] is None and guardrails[1]["guardrails_id"] == body["guardrails_id"]
    assert guardrails[1]["modality"] == "visual" and guardrails[1]["app_message"] is False
    assert guardrails[2]["callback_url"] == "https://hooks.example.com/guardrails"
    assert Conversation.objects.get(pk=conversation_id).pal_snapshot["objectives"] is None


def test_deleting_what_a_pal_links_is_a_409_naming_the_pal(api):
    body = api.post("/v2/guardrails", SET, format="json").json()
    single = api.post("/v2/guardrails", ONE, format="json").json()["guardrail_uuid"]
    by_set = api.post("/v2/pals", {"system_prompt": "p", "pal_name": "Clinic", "guardrails_id": body["guardrails_id"]},
                      format="json").json()["pal_id"]
    by_item = api.post("/v2/pals", {"system_prompt": "p", "pal_name": "Sales",
                                    "guardrail_ids": [single, body["data"][0]["guardrail_uuid"]]},
                       format="json").json()["pal_id"]
    r = api.delete(f"/v2/guardrails/{body['guardrails_id']}")
    assert r.status_code == 409 and by_set in r.json()["error"] and by_item in r.json()["error"], r.content
    r = api.delete(f"/v2/guardrails/{single}")
    assert r.status_code == 409 and "Sales" in r.json()["error"] and "Clinic" not in r.json()["error"]
    r = patch(api, body["guardrails_id"], [{"op": "remove", "path": "/data/0"}])
    assert r.status_code == 409 and "no_medical_advice" in r.json()["error"]

    api.patch(f"/v2/pals/{by_item}", data=json.dumps([{"op": "replace", "path": "/guardrail_ids", "value": []}]),
              content_type="application/json-patch+json")
    assert api.delete(f"/v2/guardrails/{single}").status_code == 204
    assert api.delete(f"/v2/guardrails/{body['guardrails_id']}").status_code == 409  # Clinic still links the set
    api.delete(f"/v2/pals/{by_set}")
    assert api.delete(f"/v2/guardrails/{body['guardrails_id']}").status_code == 204
    assert api.get(f"/v2/guardrails/{body['data'][1]['guardrail_uuid']}").status_code == 404


def test_the_schema_documents_the_endpoints(api):
    import yaml

    schema = yaml.safe_load(api.get("/v2/openapi.yaml").content)
    paths = {path.rstrip("/"): item for path, item in schema["paths"].items()}
    assert {"get", "post"} <= set(paths["/v2/guardrails"])
    one = paths["/v2/guardrails/{guardrails_id}"]
    assert {"get", "patch", "delete"} <= set(one) and "409" in one["delete"]["responses"]
    pal = schema["components"]["schemas"]["PalCreateRequest"]
    assert "guardrails_id" in json.dumps(pal)
