"""The conversation WebSocket (WebsocketCommunicator): join rules, signalling errors, and a real
aiortc offer answered by the server. Engines are fakes here (this isolates the consumer's
logic); the real engines over real WebRTC are in test_webrtc_session.py."""
from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from channels.testing import WebsocketCommunicator

from conversations.models import Conversation
from conversations.realtime.agent import EngineBundle
from cvi_site.asgi import application
from tests.conversations.realtime.realtime_fakes import FakeLLM, FakeSTT, FakeTTS, FakeVAD
from tests.factories import make_face, make_pal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fake_engines(monkeypatch):
    monkeypatch.setattr("conversations.session.build_engines",
                        lambda config: EngineBundle(vad=FakeVAD(), tts=FakeTTS(), stt=FakeSTT("Hello."), llm=FakeLLM()))
    monkeypatch.setattr("conversations.session.build_renderer", lambda config: None)


@pytest.fixture
def conversation(account):
    from conversations.services import conversation_create

    face = make_face(account=account)
    pal = make_pal(account=account, face=face)
    return lambda **extra: conversation_create(account=account, data={"face_id": face.id, "pal_id": pal.id, **extra})


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def _connect(path):
    ws = WebsocketCommunicator(application, path)
    connected, _ = await ws.connect(timeout=10)
    assert connected
    return ws, await ws.receive_json_from(timeout=10)


async def _end_all():
    from conversations.live.registry import SESSIONS

    for session in list(SESSIONS.values()):
        await session.end("test over", record=False)


def test_unknown_conversation_is_refused():
    async def scenario():
        ws, first = await _connect("/ws/conversations/cnothere/")
        assert first == {"type": "error", "code": "not_found", "message": "no such conversation"}
        await ws.disconnect()
    run(scenario())


def test_ended_conversation_is_refused(conversation):
    conv = conversation(test_mode=True)

    async def scenario():
        ws, first = await _connect(f"/ws/conversations/{conv.id}/")
        assert first["type"] == "error" and first["code"] == "ended"
        await ws.disconnect()
    run(scenario())


def test_private_conversation_needs_its_token(conversation):
    conv = conversation(require_auth=True)

    async def scenario():
        ws, first = await _connect(f"/ws/conversations/{conv.id}/?t=wrong")
        assert first["type"] == "error" and first["code"] == "unauthorized"
        await ws.disconnect()
        ws, first = await _connect(f"/ws/conversations/{conv.id}/?t={conv.meeting_token}")
        assert first["type"] == "joined"
        await ws.disconnect()
        await _end_all()
    run(scenario())


def test_bad_input_gets_clear_errors_and_the_session_goes_on(conversation):
    conv = conversation()

    async def scenario():
        ws, first = await _connect(f"/ws/conversations/{conv.id}/")
        assert first["type"] == "joined"
        await ws.send_to(text_data="{not json")
        assert (await ws.receive_json_from(timeout=5))["code"] == "bad_message"
        await ws.send_json_to({"type": "offer", "sdp": "hello"})
        assert (await ws.receive_json_from(timeout=5))["code"] == "bad_sdp"
        await ws.send_json_to({"type": "offer", "sdp": "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\nbroken"})
        assert (await ws.receive_json_from(timeout=10))["code"] == "bad_sdp"
        await ws.send_to(text_data="x" * 300_000)
        assert (await ws.receive_json_from(timeout=5))["code"] == "message_too_large"
        await ws.send_json_to({"type": "message", "message": {"message_type": "conversation", "event_type": "conversation.nope"}})
        err = await ws.receive_json_from(timeout=5)
        assert err["type"] == "event" and err["event"]["event_type"] == "system.error"
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from(timeout=5) == {"type": "pong"}
        await ws.disconnect()
        await _end_all()
    run(scenario())


def test_participant_limit(conversation):
    conv = conversation(max_participants=2)

    async def scenario():
        first_ws, first = await _connect(f"/ws/conversations/{conv.id}/")
        assert first["type"] == "joined"
        second_ws, second = await _connect(f"/ws/conversations/{conv.id}/")
        assert second["type"] == "error" and second["code"] == "full"
        await second_ws.disconnect()
        await first_ws.send_json_to({"type": "ping"})
        assert await first_ws.receive_json_from(timeout=5) == {"type": "pong"}
        await first_ws.disconnect()
        await _end_all()
    run(scenario())


def test_real_offer_gets_an_answer_and_left_timeout_ends_the_call(conversation):
    conv = conversation(properties={"participant_left_timeout": 0})

    async def scenario():
        ws, first = await _connect(f"/ws/conversations/{conv.id}/")
        assert first["type"] == "joined"
        pc = RTCPeerConnection()
        pc.createDataChannel("opencvi")
        pc.addTransceiver("audio", direction="sendrecv")
        await pc.setLocalDescription(await pc.createOffer())
        await ws.send_json_to({"type": "offer", "sdp": pc.localDescription.sdp})
        answer = await ws.receive_json_from(timeout=20)
        assert answer["type"] == "answer" and answer["sdp"].startswith("v=0")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        for _ in range(100):
            if pc.connectionState == "connected":
                break
            await asyncio.sleep(0.1)
        assert pc.connectionState == "connected"
        await ws.disconnect()
        await pc.close()
        from conversations.live.registry import SESSIONS
        for _ in range(100):
            if conv.id not in SESSIONS:
                break
            await asyncio.sleep(0.1)
        assert conv.id not in SESSIONS
    run(scenario(), timeout=60)
    conv.refresh_from_db()
    assert conv.status == Conversation.Status.ENDED
    assert conv.shutdown_reason == "participant_left_timeout reached"
    assert conv.events.filter(event_type="system.replica_joined").exists()


def test_a_join_beyond_the_process_limit_is_refused_and_nothing_is_left_open(conversation, settings):
    """Admission control: the process holds MAX_LIVE_CALLS_PER_PROCESS calls; the next join gets
    the documented error, its conversation ends with the reason (and an error event), and no
    session or reservation is left behind."""
    from conversations.live import registry as session_module
    from conversations.models import ConversationEvent

    first_conv, second_conv, third = conversation(), conversation(), conversation()

    async def scenario():
        await _end_all()  # whatever an earlier test left in this process
        before = set(session_module.SESSIONS)
        settings.MAX_LIVE_CALLS_PER_PROCESS = 1
        ws1, joined = await _connect(f"/ws/conversations/{first_conv.id}/")
        assert joined["type"] == "joined"
        ws2, refused = await _connect(f"/ws/conversations/{second_conv.id}/")
        assert refused["type"] == "error" and refused["code"] == "server_at_capacity"
        assert "(1)" in refused["message"]
        closed = await ws2.receive_output(timeout=10)
        assert closed == {"type": "websocket.close", "code": 4013}
        assert set(session_module.SESSIONS) - before == {first_conv.id}
        assert not session_module._reserved
        await ws1.disconnect()
        await _end_all()
        # once the first call is over there is room again
        ws3, joined3 = await _connect(f"/ws/conversations/{third.id}/")
        assert joined3["type"] == "joined"
        await ws3.disconnect()
        await _end_all()

    run(scenario())
    second_conv.refresh_from_db()
    assert second_conv.status == Conversation.Status.ENDED
    assert second_conv.shutdown_reason == "server_at_capacity"
    errors = ConversationEvent.objects.filter(conversation=second_conv, event_type="system.error")
    assert [e.properties["code"] for e in errors] == ["server_at_capacity"]


async def _offer(ws):
    """A new peer connection for this participant, over the same WebSocket (what the page
    does when a live call's media drops); returns it once connected."""
    pc = RTCPeerConnection()
    pc.createDataChannel("opencvi")
    pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    await ws.send_json_to({"type": "offer", "sdp": pc.localDescription.sdp})
    while True:
        msg = await ws.receive_json_from(timeout=20)
        if msg["type"] == "answer":
            break
    await pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="answer"))
    for _ in range(200):
        if pc.connectionState == "connected":
            return pc
        await asyncio.sleep(0.1)
    raise AssertionError(f"peer connection {pc.connectionState}")


async def _reply_to(ws, text):
    """Ask over the protocol and wait for the face to start answering."""
    await ws.send_json_to({"type": "message", "message": {
        "message_type": "conversation", "event_type": "conversation.respond", "properties": {"text": text}}})
    while True:
        msg = await ws.receive_json_from(timeout=20)
        if msg["type"] == "event" and msg["event"]["event_type"] == "conversation.replica.started_speaking":
            return msg["event"]


def test_a_dropped_peer_rejoins_within_the_grace_period_and_the_call_goes_on(conversation):
    """The media drops (the peer connection dies), then the WebSocket too; the page comes back
    within participant_left_timeout and the same live session answers, history included."""
    from conversations.live.registry import SESSIONS

    conv = conversation(properties={"participant_left_timeout": 30})

    async def scenario():
        ws, first = await _connect(f"/ws/conversations/{conv.id}/")
        assert first["type"] == "joined"
        pc = await _offer(ws)
        await _reply_to(ws, "First question.")
        session = SESSIONS[conv.id]
        # 1. the media connection dies; the WebSocket stays: a new offer on the same socket
        await pc.close()
        pc = await _offer(ws)
        await _reply_to(ws, "Second question.")
        # 2. the WebSocket drops as well: the participant is gone, the grace period runs
        await ws.disconnect()
        await pc.close()
        await asyncio.sleep(0.5)
        assert SESSIONS.get(conv.id) is session and not session.ended
        ws, first = await _connect(f"/ws/conversations/{conv.id}/")
        assert first["type"] == "joined"
        pc = await _offer(ws)
        await _reply_to(ws, "Third question.")
        assert SESSIONS.get(conv.id) is session
        users = [m["content"] for m in session.pipeline.history if m["role"] == "user"]
        assert users == ["First question.", "Second question.", "Third question."]
        await ws.disconnect()
        await pc.close()
        await _end_all()

    run(scenario(), timeout=120)


def test_links_a_call_emits_use_the_creating_requests_host_never_a_participants(api, account, settings):
    """A recording's storage_uri (sent in a signed webhook that a backend fetches with its API key)
    is built from PUBLIC_URL or the host of the authenticated API request that created the
    conversation: a participant's Host header cannot choose it."""
    from conversations.live.config import load_session_config

    settings.PUBLIC_URL = ""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "api.example.com"]
    face = make_face(account=account)
    pal = make_pal(account=account, face=face)
    created = api.post("/v2/conversations", {"persona_id": pal.id, "replica_id": face.id}, format="json",
                       HTTP_HOST="api.example.com")
    assert created.status_code == 200, created.content
    conv_id = created.json()["conversation_id"]

    async def scenario():
        await _end_all()
        ws = WebsocketCommunicator(application, f"/ws/conversations/{conv_id}/",
                                   headers=[(b"host", b"attacker.example")])
        connected, _ = await ws.connect(timeout=10)
        assert connected
        joined = await ws.receive_json_from(timeout=30)
        assert joined["type"] == "joined"
        from conversations.live.registry import SESSIONS

        base = SESSIONS[conv_id].base_url
        await ws.disconnect()
        await _end_all()
        return base

    assert asyncio.run(asyncio.wait_for(scenario(), 120)) == "http://api.example.com"
    settings.PUBLIC_URL = "https://cvi.example.org"
    assert load_session_config(conv_id).base_url == "https://cvi.example.org"
