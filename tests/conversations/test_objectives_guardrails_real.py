"""Objectives and guardrails made through the API as the hosted docs write them, loaded as a live
session loads them, and driven by spoken turns through the real embedded engines (Silero VAD,
Whisper, Qwen 0.5B on llama.cpp, eSpeak NG): the graph's variables are extracted, its branch is
taken, a broken rule's reply is never spoken, and the webhooks arrive signed.

The events go through the session's own sink (``EventStore``), which stores them and queues the
webhooks; each queued delivery is then sent by the webhook task to a real local receiver.
"""
from __future__ import annotations

import hashlib
import hmac
import json

import numpy as np
import pytest

from bench.harness import RealtimeDriver
from conversations.realtime import events as ev
from conversations.realtime.protocol import to_wire
from conversations.realtime.agent import EngineBundle
from conversations.realtime.audio import resample
from conversations.realtime.engines.base import VoiceOptions
from conversations.realtime.events import GUARDRAIL_TRIGGERED, OBJECTIVE_COMPLETED
from conversations.realtime.guardrails import SAFE_LINE
from tests.conversations.realtime.realtime_fakes import run
from tests.cvi_site.test_webhooks import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

SECRET = "the-receiver-knows-this"
WAIT_MS = 240_000  # pipeline time; a loaded shared CPU makes the model slow, never wrong


@pytest.fixture(scope="module")
def engines() -> EngineBundle:
    from conversations.realtime.engines import registry
    from conversations.realtime.engines.embeddings import embedded_embedder

    return EngineBundle(vad=registry.get_vad(), stt=registry.get_stt(), llm=registry.get_llm(),
                        tts=registry.get_tts(), embedder=embedded_embedder())


def _speech(engines: EngineBundle, text: str) -> np.ndarray:
    chunks = engines.tts.synthesize_blocking(text, voice=VoiceOptions(voice="en-us"))
    pcm = np.concatenate([c.pcm for c in chunks]).astype(np.float32) / 32768.0
    return resample(pcm, engines.tts.sample_rate, 16_000)


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_SECRET = SECRET
    receiver = Receiver([204])
    yield receiver
    receiver.close()


def _call(api, account, pal_body: dict) -> str:
    from tests.factories import make_face

    face = make_face(account=account)
    pal = api.post("/v2/pals", {"pal_name": "Tester", "default_face_id": face.id,
                                "layers": {"llm": {"temperature": 0.0}}, **pal_body}, format="json")
    assert pal.status_code == 200, pal.json()
    conv = api.post("/v2/conversations", {"pal_id": pal.json()["pal_id"], "audio_only": True}, format="json")
    assert conv.status_code == 200, conv.json()
    return conv.json()["conversation_id"]


def _talk(engines: EngineBundle, conversation_id: str, turns: list[tuple[str, str]]) -> list[dict]:
    """Speak each user line, then wait for the reply and for the event ``(event type, name)`` it
    should bring; returns every event of the call, stored through the session's sink."""
    from conversations.live.config import load_session_config, pipeline_for
    from conversations.live.sink import EventStore

    config = load_session_config(conversation_id)
    typed, events = [], []

    def sink(event):
        typed.append(event)
        events.append(to_wire(event, conversation_id))

    async def main():
        pipe = pipeline_for(config, engines, event_sink=sink)
        drv = RealtimeDriver(pipe, speed=2.0)
        await pipe.start()
        if config.pipeline.custom_greeting:  # the greeting cannot be interrupted: let it finish
            assert await drv.wait_event(ev.REPLICA_STOPPED, timeout_ms=60_000) is not None
        await drv.silence(500)
        for line, expected in turns:
            start = drv.t_ms
            await drv.play(_speech(engines, line))
            hit = await drv.wait_event(ev.UTTERANCE, timeout_ms=WAIT_MS, after_ms=start,
                                       where=lambda e: e["properties"]["role"] == "replica")
            assert hit is not None, f"no reply to {line!r}: {[e['event_type'] for e in events]}"
            if expected:
                kind, name = expected.split(":")
                got = await drv.wait_event(kind, timeout_ms=WAIT_MS, where=lambda e: name in (
                    e["properties"].get("objective_name"), e["properties"].get("guardrail")))
                assert got is not None, f"no {expected} after {line!r}: {_said(events)}"
        await pipe.close()

    run(main(), timeout=900)
    store = EventStore(conversation_id)
    for e in typed:
        store.store_event(e, 0.0)
    return events


def _said(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["properties"]["role"], e["properties"]["speech"]) for e in events if e["event_type"] == ev.UTTERANCE]


def _deliver_all() -> None:
    from cvi_site.models import WebhookDelivery
    from cvi_site.webhooks import webhook_attempt

    for delivery in WebhookDelivery.objects.order_by("pk"):
        assert webhook_attempt.apply(args=(delivery.pk,)).get() == "delivered", delivery.attempts


def _signed_bodies(receiver: Receiver) -> list[dict]:
    from cvi_site.webhooks import SIGNATURE_HEADER

    out = []
    for headers, body in receiver.got:
        assert headers[SIGNATURE_HEADER] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        out.append(json.loads(body))
    return out


def test_a_three_step_objectives_graph_with_a_branch_driven_by_speech(api, account, engines, receiver,
                                                                        django_capture_on_commit_callbacks):
    graph = {"data": [
        {"objective_name": "collect_name", "objective_prompt": "Ask the user for their full name.",
         "output_variables": ["full_name"], "next_required_objectives": ["ask_interest"],
         "callback_url": receiver.url},
        {"objective_name": "ask_interest", "objective_prompt": "Ask whether the user wants a product demo or "
         "pricing information.", "next_conditional_objectives": {
             "schedule_demo": "the user wants a demo", "send_pricing": "the user wants pricing information"},
         "callback_url": receiver.url},
        {"objective_name": "schedule_demo", "objective_prompt": "Ask which day of the week suits the user for "
         "the demo.", "output_variables": ["demo_day"], "callback_url": receiver.url},
        {"objective_name": "send_pricing", "objective_prompt": "Ask for the user's email address.",
         "output_variables": ["email"], "callback_url": receiver.url},
    ]}
    created = api.post("/v2/objectives", graph, format="json")
    assert created.status_code == 200, created.json()
    conversation_id = _call(api, account, {
        "objectives_id": created.json()["objectives_id"],
        "system_prompt": "You are Ana, a friendly sales assistant in a video call. Answer in one short sentence.",
        "greeting": "Hi, I'm Ana. What is your name?"})
    with django_capture_on_commit_callbacks(execute=False):
        events = _talk(engines, conversation_id, [
            ("My name is Anna Brown.", f"{OBJECTIVE_COMPLETED}:collect_name"),
            ("I would like to see a demo of the product, please.", f"{OBJECTIVE_COMPLETED}:ask_interest"),
            ("I can do the demo on Friday afternoon.", f"{OBJECTIVE_COMPLETED}:schedule_demo"),
        ])
    done = {e["properties"]["objective_name"]: e["properties"] for e in events if e["event_type"] == OBJECTIVE_COMPLETED}
    assert list(done) == ["collect_name", "ask_interest", "schedule_demo"], _said(events)
    assert "brown" in done["collect_name"]["output_variables"]["full_name"].lower()
    assert done["ask_interest"]["next_objectives"] == ["schedule_demo"]  # the branch taken
    assert "friday" in done["schedule_demo"]["output_variables"]["demo_day"].lower()
    assert done["schedule_demo"]["progress"]["active"] == []

    _deliver_all()
    hooks = {b["objective_name"]: b for b in _signed_bodies(receiver) if b["event_type"] == "application.objective_completed"}
    assert set(hooks) == {"collect_name", "ask_interest", "schedule_demo"}
    assert hooks["schedule_demo"]["conversation_id"] == conversation_id
    assert hooks["schedule_demo"]["output_variables"] == done["schedule_demo"]["output_variables"]
    assert hooks["collect_name"]["output_variables"] == done["collect_name"]["output_variables"]


def test_a_reply_that_breaks_a_guardrail_is_withheld_and_reported(api, account, engines, receiver,
                                                                    django_capture_on_commit_callbacks):
    created = api.post("/v2/guardrails", {"data": [
        {"guardrail_name": "no_weather", "guardrail_prompt": "Never talk about the weather or weather forecasts.",
         "modality": "verbal", "callback_url": receiver.url}]}, format="json")
    assert created.status_code == 200, created.json()
    ids = [g["guardrail_uuid"] for g in created.json().get("data", [created.json()])]
    conversation_id = _call(api, account, {
        "guardrail_ids": ids,
        # a PAL whose own brief breaks the rule: the reply would talk about the weather
        "system_prompt": "You are Ana, a TV weather presenter. Always answer with tomorrow's weather forecast in "
                         "one short sentence."})
    with django_capture_on_commit_callbacks(execute=False):
        events = _talk(engines, conversation_id, [("What will it be like in London tomorrow?",
                                                   f"{GUARDRAIL_TRIGGERED}:no_weather")])
    replies = [s for role, s in _said(events) if role == "replica"]
    assert replies == [SAFE_LINE], _said(events)
    hits = [e for e in events if e["event_type"] == GUARDRAIL_TRIGGERED]
    assert any(h["properties"]["role"] == "assistant" for h in hits)
    assert all(h["message_type"] == "conversation" for h in hits)  # app_message defaults to true: sent to the client

    _deliver_all()
    hooks = [b for b in _signed_bodies(receiver) if b["event_type"] == "application.guardrail_triggered"]
    assert hooks and hooks[0]["conversation_id"] == conversation_id
    assert hooks[0]["properties"]["guardrail"] == "no_weather" and hooks[0]["properties"]["guardrail_uuid"] in ids
    assert hooks[0]["properties"]["reason"]
