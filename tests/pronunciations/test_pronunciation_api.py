"""Pronunciation dictionaries over REST, as the hosted docs write the requests: CRUD with JSON
Patch, validation that names the field, account scoping, linking from a PAL's TTS layer (checked,
warned about, unlinked on delete) and the rules a call reads when it starts."""
from __future__ import annotations

import pytest

from conversations.api.serializers import conversation_input
from conversations.live.config import load_session_config
from conversations.realtime import pronounce
from conversations.services import conversation_create
from pals.models import Pal

pytestmark = pytest.mark.django_db

BRAND = {"name": "Brand Terms", "rules": [{"text": "Tavus", "pronunciation": "TAH-vus", "type": "alias"}]}


def create(api, body):
    return api.post("/v2/pronunciation-dictionaries", body, format="json")


def error(response) -> str:
    assert response.status_code == 400, (response.status_code, response.content)
    return response.json()["error"]


def test_create_get_list_patch_delete_as_the_hosted_docs_write_them(api):
    r = create(api, BRAND)
    assert r.status_code == 200, r.content
    body = r.json()
    dictionary_id = body["pronunciation_dictionary_id"]
    assert dictionary_id.startswith("pd_") and body["name"] == "Brand Terms" and body["rules_count"] == 1
    # the hosted defaults of a rule are filled in
    assert body["rules"] == [{"text": "Tavus", "pronunciation": "TAH-vus", "type": "alias",
                              "case_sensitive": False, "word_boundaries": True}]
    assert body["created_at"] and body["updated_at"]
    assert api.get(f"/v2/pronunciation-dictionaries/{dictionary_id}").json() == body
    listed = api.get("/v2/pronunciation-dictionaries").json()
    assert listed["total_count"] == 1 and listed["data"][0]["pronunciation_dictionary_id"] == dictionary_id

    r = api.patch(f"/v2/pronunciation-dictionaries/{dictionary_id}",
                  [{"op": "replace", "path": "/name", "value": "Updated Brand Terms"}], format="json")
    assert r.status_code == 200, r.content
    assert r.json()["name"] == "Updated Brand Terms" and r.json()["rules_count"] == 1
    # the RFC's own media type, and a rule added inside /rules
    r = api.generic("PATCH", f"/v2/pronunciation-dictionaries/{dictionary_id}/",
                    '[{"op": "add", "path": "/rules/-", "value": {"text": "bayou", "pronunciation": "ˈbaɪ.oʊ", '
                    '"type": "ipa"}}]', content_type="application/json-patch+json")
    assert r.status_code == 200, r.content
    assert r.json()["rules_count"] == 2 and r.json()["rules"][1]["type"] == "ipa"

    assert api.delete(f"/v2/pronunciation-dictionaries/{dictionary_id}").status_code == 204
    assert api.get(f"/v2/pronunciation-dictionaries/{dictionary_id}").status_code == 404


@pytest.mark.parametrize(("body", "named"), [
    ({"rules": []}, "name"),
    ({"name": " "}, "name"),
    ({"name": "x" * 256}, "name"),
    ({"name": "d", "rules": [{"text": " ", "pronunciation": "a", "type": "alias"}]}, "rules.0.text"),
    ({"name": "d", "rules": [{"text": "a", "pronunciation": "b"}]}, "rules.0.type"),
    ({"name": "d", "rules": [{"text": "a", "pronunciation": "b", "type": "phonetic"}]}, "rules.0.type"),
    ({"name": "d", "rules": [{"text": "a", "pronunciation": " ", "type": "alias"}]}, "rules.0.pronunciation"),
    ({"name": "d", "rules": [{"text": "Tavus", "pronunciation": "TAH-vus", "type": "ipa"}]}, "rules.0.pronunciation"),
    ({"name": "d", "rules": [{"text": "a", "pronunciation": "b", "type": "alias", "stress": 1}]}, "stress"),
    ({"name": "d", "rules": [{"text": "Tavus", "pronunciation": "a", "type": "alias"},
                             {"text": "tavus", "pronunciation": "b", "type": "alias"}]}, "rules.1.text"),
    ({"name": "d", "rules": [{"text": "a", "pronunciation": "b", "type": "alias"}] * (pronounce.MAX_RULES + 1)},
     "rules"),
    ({"name": "d", "tags": []}, "tags"),
])
def test_bad_input_is_a_400_naming_the_field(api, body, named):
    assert named in error(create(api, body))
    assert api.get("/v2/pronunciation-dictionaries").json()["total_count"] == 0


def test_an_ipa_rule_must_be_ipa():
    assert pronounce.ipa_problem("ˈbɑju") is None and pronounce.ipa_problem("təˈmɑːtəʊ") is None
    assert "ˈ (U+02C8)" in pronounce.ipa_problem("'bAju")  # ASCII look-alikes are named
    assert "not IPA" in pronounce.ipa_problem("TAH-vus")
    assert "only marks" in pronounce.ipa_problem("ˈː")


def test_a_patch_is_atomic_and_limited_to_name_and_rules(api):
    dictionary_id = create(api, BRAND).json()["pronunciation_dictionary_id"]
    url = f"/v2/pronunciation-dictionaries/{dictionary_id}"
    assert "/pronunciation_dictionary_id" in error(api.patch(url, [
        {"op": "replace", "path": "/pronunciation_dictionary_id", "value": "pd_x"}], format="json"))
    # the second operation makes the result invalid: nothing of the first is kept
    assert "rules.0.type" in error(api.patch(url, [
        {"op": "replace", "path": "/name", "value": "Renamed"},
        {"op": "replace", "path": "/rules/0/type", "value": "sound"}], format="json"))
    assert "non-empty JSON Patch" in error(api.patch(url, {"name": "x"}, format="json"))
    assert api.get(url).json()["name"] == "Brand Terms"


def test_another_accounts_dictionary_is_not_found(api, other_api):
    dictionary_id = create(api, BRAND).json()["pronunciation_dictionary_id"]
    url = f"/v2/pronunciation-dictionaries/{dictionary_id}"
    assert other_api.get(url).status_code == 404
    assert other_api.patch(url, [{"op": "replace", "path": "/name", "value": "x"}], format="json").status_code == 404
    assert other_api.delete(url).status_code == 404
    assert other_api.get("/v2/pronunciation-dictionaries").json()["total_count"] == 0
    # nor can its PALs link it
    r = other_api.post("/v2/pals", {"system_prompt": "Hi.", "layers": {
        "tts": {"pronunciation_dictionary_id": dictionary_id}}}, format="json")
    assert "layers.tts.pronunciation_dictionary_id" in error(r)


@pytest.fixture
def stock_face():
    from faces.services import face_stock_ensure

    list(face_stock_ensure())
    return "rstock000001"


def _call(account, pal_id: str, face_id: str):
    """A conversation of the PAL (test mode: stored ended, nothing joins) as a call reads it."""
    conv = conversation_create(account=account, data=conversation_input({"pal_id": pal_id, "replica_id": face_id,
                                                                         "test_mode": True}))
    return load_session_config(conv.pk).pipeline.tts


def _pal(api, **tts):
    return api.post("/v2/pals", {"pal_name": "Voice", "system_prompt": "You are a test.",
                                 "layers": {"tts": tts}}, format="json")


def test_a_pal_links_a_dictionary_of_its_account_and_a_call_reads_its_rules(api, account, stock_face):
    assert "no pronunciation dictionary 'pd_missing'" in error(_pal(api, pronunciation_dictionary_id="pd_missing"))
    dictionary_id = create(api, {"name": "Terms", "rules": [
        {"text": "OpenCVI", "pronunciation": "open see vee eye", "type": "alias"},
        {"text": "tomato", "pronunciation": "təˈmɑːtəʊ", "type": "ipa"}]}).json()["pronunciation_dictionary_id"]
    r = _pal(api, pronunciation_dictionary_id=dictionary_id)
    assert r.status_code == 200, r.content
    assert r.json()["layers"]["tts"]["pronunciation_dictionary_id"] == dictionary_id
    assert r.json()["warnings"] == []  # eSpeak NG takes the IPA rule's phonemes
    pal_id = r.json()["pal_id"]

    tts = _call(account, pal_id, stock_face)
    assert tts.pronunciation_dictionary_id == dictionary_id
    assert [(r.text, r.type) for r in tts.pronunciation.rules] == [("OpenCVI", "alias"), ("tomato", "ipa")]

    # an edit of the rules reaches the PAL's next call
    api.patch(f"/v2/pronunciation-dictionaries/{dictionary_id}",
              [{"op": "remove", "path": "/rules/1"}], format="json")
    assert [r.text for r in _call(account, pal_id, stock_face).pronunciation.rules] == ["OpenCVI"]


def test_ipa_rules_on_an_engine_without_phoneme_input_come_with_a_warning(api):
    dictionary_id = create(api, {"name": "Terms", "rules": [
        {"text": "bayou", "pronunciation": "ˈbɑju", "type": "ipa"}]}).json()["pronunciation_dictionary_id"]
    r = _pal(api, tts_engine="openai-tts", pronunciation_dictionary_id=dictionary_id)
    assert r.status_code == 200, r.content
    (warning,) = [w for w in r.json()["warnings"] if "pronunciation_dictionary_id" in w]
    assert "openai-tts" in warning and "'bayou'" in warning
    # piper takes IPA: no warning once the PAL switches to it
    r = api.patch(f"/v2/pals/{r.json()['pal_id']}",
                  [{"op": "replace", "path": "/layers/tts/tts_engine", "value": "piper"}], format="json")
    assert r.status_code == 200, r.content
    assert not [w for w in r.json()["warnings"] if "pronunciation_dictionary_id" in w]


def test_deleting_a_dictionary_unlinks_it_from_its_pals(api, account, stock_face):
    dictionary_id = create(api, BRAND).json()["pronunciation_dictionary_id"]
    pal_id = _pal(api, pronunciation_dictionary_id=dictionary_id, voice_id="en-gb").json()["pal_id"]
    conv = conversation_create(account=account, data=conversation_input({"pal_id": pal_id, "replica_id": stock_face,
                                                                         "test_mode": True}))
    assert api.delete(f"/v2/pronunciation-dictionaries/{dictionary_id}").status_code == 204
    assert Pal.objects.get(pk=pal_id).layers["tts"] == {"voice_id": "en-gb"}
    assert "pronunciation_dictionary_id" not in api.get(f"/v2/pals/{pal_id}").json()["layers"]["tts"]
    # a conversation created before keeps its PAL snapshot's id, and speaks without the rules
    tts = load_session_config(conv.pk).pipeline.tts
    assert tts.pronunciation_dictionary_id == dictionary_id and not tts.pronunciation
