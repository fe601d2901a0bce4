"""The REST API's rules for wake_phrase, sleep_phrase and idle_engagement: what a call can honour
is stored, what it could not is refused with a 400 naming the option."""
from __future__ import annotations

import pytest

from tests.factories import make_face

pytestmark = pytest.mark.django_db


def create(api, account, flow: dict, **body):  # noqa: ANN001, ANN201
    face = make_face(account=account)
    data = {"pal_name": "Ana", "system_prompt": "You are Ana.", "default_face_id": face.id,
            "layers": {"conversational_flow": flow}, **body}
    return api.post("/v2/pals", data, format="json")


def test_wake_sleep_and_idle_are_stored_as_sent(api, account):
    flow = {"wake_phrase": "Hey Ana", "sleep_phrase": "go to sleep", "idle_engagement": "patient"}
    r = create(api, account, flow)
    assert r.status_code == 200, r.json()
    assert r.json()["layers"]["conversational_flow"] == flow
    got = api.get(f"/v2/pals/{r.json()['pal_id']}").json()
    assert got["layers"]["conversational_flow"] == flow


@pytest.mark.parametrize(("flow", "body", "named"), [
    ({"sleep_phrase": "go to sleep"}, {}, "sleep_phrase"),
    ({"wake_phrase": "Hey Ana", "idle_engagement": "eager"}, {}, "idle_engagement"),
    ({"wake_phrase": "?!"}, {}, "wake_phrase"),
    ({"idle_engagement": "sometimes"}, {}, "idle_engagement"),
    ({"idle_engagement": "patient"}, {"pipeline_mode": "echo"}, "idle_engagement"),
    ({"wake_phrase": "Hey Ana"}, {"pipeline_mode": "echo"}, "wake_phrase"),
])
def test_what_a_call_could_not_honour_is_refused_naming_the_option(api, account, flow, body, named):
    r = create(api, account, flow, **body)
    assert r.status_code == 400, r.json()
    assert named in str(r.json())


def test_switching_a_pal_to_echo_mode_is_refused_while_it_has_idle_engagement(api, account):
    r = create(api, account, {"idle_engagement": "eager"})
    assert r.status_code == 200, r.json()
    pal_id = r.json()["pal_id"]
    r = api.patch(f"/v2/pals/{pal_id}", [{"op": "replace", "path": "/pipeline_mode", "value": "echo"}],
                  format="json")
    assert r.status_code == 400 and "idle_engagement" in str(r.json())
    assert api.get(f"/v2/pals/{pal_id}").json()["pipeline_mode"] == "full"
    # "off" asks for nothing: an echo PAL may carry it
    r = create(api, account, {"idle_engagement": "off"}, pipeline_mode="echo")
    assert r.status_code == 200, r.json()
