"""Perception through the real transport: a headless aiortc client
(bench.client) sends a synthetic camera (CameraTrack playing the stock
portrait) to a real session through the real consumer; the frames reach the embedded
perception engine, and the LLM's next prompt carries the visual context. The speech engines
are fakes (tone bursts as words, realtime_fakes.py), so the test isolates perception.
"""
from __future__ import annotations

import asyncio
import base64
import json

import cv2
import numpy as np
import pytest
from channels.testing import WebsocketCommunicator

from bench import perception_scene as sv
from bench.client import CameraTrack, CVIClient
from conversations.models import Conversation, ConversationEvent, Utterance
from conversations.realtime.agent import EngineBundle
from cvi_site.asgi import application
from tests.conversations.realtime.perception.vision_server import images_of, text_of, vision_server
from tests.conversations.realtime.realtime_fakes import FakeLLM, FakeSTT, FakeTTS, FakeVAD
from tests.factories import make_face, make_pal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LONG_REPLY = ("Let me tell you about lighthouses. They stand on rocky coasts and guide ships through fog and "
              "storms with a bright turning light. Keepers once lived inside them all year, trimming the wicks, "
              "winding the clockwork and writing the weather in a log every few hours, night after night.")


class CommunicatorSignalling:
    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.ws = communicator

    async def send_json(self, data):
        await self.ws.send_to(text_data=json.dumps(data))

    async def receive_json(self, timeout):
        return json.loads(await self.ws.receive_from(timeout=timeout))

    async def close(self):
        await self.ws.disconnect()


def words48k(n: int) -> np.ndarray:
    """``n`` fake words (240 ms tone bursts, 80 ms apart) at 48 kHz."""
    word = (0.3 * 32767 * np.sin(2 * np.pi * 220 * np.arange(int(0.24 * 48_000)) / 48_000)).astype(np.int16)
    gap = np.zeros(int(0.08 * 48_000), np.int16)
    return np.concatenate([p for _ in range(n) for p in (word, gap)][:-1])


@pytest.fixture
def llm(monkeypatch):
    fake = FakeLLM("I can see you.")
    monkeypatch.setattr("conversations.session.build_engines",
                        lambda config: EngineBundle(vad=FakeVAD(), tts=FakeTTS(), stt=FakeSTT("What do you see?"),
                                                    llm=fake))
    monkeypatch.setattr("conversations.session.build_renderer", lambda config: None)
    return fake


@pytest.fixture
def conversation(account):
    from conversations.services import conversation_create

    def make(perception: dict, **extra):
        face = make_face(account=account)
        pal = make_pal(account=account, face=face, layers={"perception": perception})
        return conversation_create(account=account, data={"face_id": face.id, "pal_id": pal.id, **extra})
    return make


def run(coro, timeout):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def screen_frame(t: float) -> np.ndarray:
    """A shared screen: a white page with a title."""
    page = np.full((400, 640, 3), 250, np.uint8)
    cv2.putText(page, "QUARTERLY REPORT", (60, 200), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (20, 20, 20), 3)
    return page


async def _client(conversation_id: str, script: tuple[tuple[float, str], ...]) -> CVIClient:
    ws = WebsocketCommunicator(application, f"/ws/conversations/{conversation_id}/")
    connected, _ = await ws.connect(timeout=30)
    assert connected
    camera = CameraTrack(lambda t: sv.frame_at(t, script), fps=10)
    client = CVIClient(CommunicatorSignalling(ws), camera=camera)
    await client.connect(timeout=60)
    return client


async def _end_sessions():
    from conversations.live.registry import SESSIONS

    for session in list(SESSIONS.values()):
        await session.end("test over", record=False)


def test_camera_frames_reach_perception_and_the_next_prompt(conversation, llm):
    conv = conversation({"perception_model": "mediapipe", "visual_awareness_queries": ["Is the user smiling?"]})

    async def scenario():
        client = await _client(conv.id, ((0.0, "present"),))
        try:
            # perception has seen the user (frames came over WebRTC and were analysed)
            await client.wait_event("conversation.perception_awareness", timeout=30,
                                    where=lambda e: e["properties"]["answers"][0]["answer"] == "smiling")
            await client.say(words48k(4))
            _, user = await client.wait_event("conversation.utterance", timeout=30,
                                              where=lambda e: e["properties"].get("role") == "user")
            await client.wait_event("conversation.utterance", timeout=30,
                                    where=lambda e: e["properties"].get("role") == "replica")
            from conversations.live.registry import SESSIONS

            stats = SESSIONS[conv.id].perception.stats
            await SESSIONS[conv.id].end("test over", record=False)
            _, analysis = await client.wait_event("conversation.perception_analysis", timeout=30)
            return user, stats, analysis
        finally:
            await client.close()
            await _end_sessions()

    user, stats, analysis = run(scenario(), 120)
    visual = user["properties"]["visual_context"]
    assert visual.startswith("[visual] user present, looking at the screen, smiling"), visual
    assert '"Is the user smiling?" smiling' in visual
    # the prompt the LLM engine received: the user's words, then the visual context
    prompt_user = llm.requests[-1][-1]
    assert prompt_user == {"role": "user", "content": f"What do you see?\n{visual}"}
    assert stats["frames_analysed"] >= 2 and stats["errors"] == 0
    # stored with the transcript; the analysis is stored on the conversation
    row = Utterance.objects.get(conversation_id=conv.id, role="user")
    assert row.visual_context == visual
    text = analysis["properties"]["analysis"]
    assert text.startswith("Observed ") and "the user was in view 100% of the time" in text
    assert Conversation.objects.get(pk=conv.id).perception_analysis == text
    assert ConversationEvent.objects.filter(conversation_id=conv.id,
                                            event_type="application.perception_analysis").count() == 1


def test_leaving_the_frame_pauses_the_reply_fires_the_tool_once_and_return_is_greeted(conversation, llm):
    llm.reply = LONG_REPLY
    conv = conversation({
        "perception_model": "mediapipe", "pause_when_absent": True,
        "visual_tools": [{"type": "function", "function": {
            "name": "user_stepped_away", "description": "The user leaves the frame.",
            "parameters": {"type": "object", "properties": {}}}}],
    })
    # present, away from 8 s to 15 s, back after that
    script = ((0.0, "present"), (8.0, "absent"), (15.0, "present"))

    async def scenario():
        client = await _client(conv.id, script)
        try:
            await client.wait_event("conversation.perception_change", timeout=30,
                                    where=lambda e: e["properties"]["change"] == "user_started_smiling")
            await client.say(words48k(4))
            await client.wait_event("conversation.replica.started_speaking", timeout=30)
            _, left = await client.wait_event("conversation.perception_change", timeout=30,
                                              where=lambda e: e["properties"]["change"] == "user_left")
            _, stopped = await client.wait_event("conversation.replica.stopped_speaking", timeout=10)
            _, back = await client.wait_event("conversation.perception_change", timeout=30,
                                              where=lambda e: e["properties"]["change"] == "user_returned")
            _, greeting = await client.wait_event("conversation.utterance", timeout=30,
                                                  where=lambda e: e["properties"].get("role") == "replica"
                                                  and "Welcome back" in e["properties"]["speech"])
            calls = client.events_of("conversation.perception_tool_call")
            return left, stopped, back, greeting, calls
        finally:
            await client.close()
            await _end_sessions()

    left, stopped, back, greeting, calls = run(scenario(), 150)
    assert stopped["properties"]["interrupted"] is True
    assert stopped["timestamp"] - left["timestamp"] < 1.5, "the reply pauses as soon as the absence is believed"
    assert back["properties"]["away_s"] == pytest.approx(7.0, abs=1.5)
    assert greeting["properties"]["speech"] == "Welcome back!"
    assert len(calls) == 1, "one call per onset, not one per frame"
    call = calls[0]["properties"]
    assert call["name"] == "user_stepped_away" and json.loads(call["arguments"]) == {}
    frame = cv2.imdecode(np.frombuffer(base64.b64decode(call["frames"][-1]), np.uint8), cv2.IMREAD_COLOR)
    assert frame is not None and frame.shape[1] == 384
    # frames are never stored: only how many there were
    stored = ConversationEvent.objects.get(conversation_id=conv.id, event_type="conversation.perception_tool_call")
    assert "frames" not in stored.properties and stored.properties["frames_count"] == len(call["frames"])


def test_no_face_counts_as_left_when_configured(conversation, llm):
    conv = conversation({"perception_model": "mediapipe", "absent_counts_as_left": True},
                        properties={"participant_left_timeout": 2})

    async def scenario():
        client = await _client(conv.id, ((0.0, "absent"),))
        try:
            for _ in range(300):
                if client.ended is not None:
                    break
                await asyncio.sleep(0.1)
            return client.ended
        finally:
            await client.close()
            await _end_sessions()

    ended = run(scenario(), 90)
    assert ended == "participant_left_timeout reached"
    conv.refresh_from_db()
    assert conv.status == "ended" and conv.shutdown_reason == "participant_left_timeout reached"
    assert "the user was in view 0% of the time" in conv.perception_analysis


def test_perception_off_and_audio_only_create_no_monitor(conversation, llm):
    off = conversation({"perception_model": "off"})
    audio = conversation({"perception_model": "mediapipe"}, audio_only=True)

    async def scenario():
        from conversations.live.registry import session_for

        found = []
        for conv in (off, audio):
            session = await session_for(conv.id)
            found.append(session.perception)
            await session.end("test over", record=False)
        return found

    assert run(scenario(), 60) == [None, None]




def test_screen_share_is_a_second_track_sampled_for_the_vision_model(conversation, llm):
    """The participant's second video track (a shared screen) reaches the vision model with
    the camera frame. aiortc as the *sending* side delivers a second video track only when
    the video m-lines come before the audio one (audio first: the second video's sender
    never sends), so this client adds camera, screen, then microphone; browsers bundle any
    order."""
    with vision_server() as server:
        conv = conversation({"perception_model": "vision-llm", "base_url": server.base_url, "model": "test-vision",
                             "visual_awareness_queries": ["Is the user holding a pen?"]})

        async def scenario():
            ws = WebsocketCommunicator(application, f"/ws/conversations/{conv.id}/")
            connected, _ = await ws.connect(timeout=30)
            assert connected
            camera = CameraTrack(lambda t: sv.frame_at(t, ((0.0, "present"),)), fps=10)
            screen = CameraTrack(screen_frame, fps=5)
            client = CVIClient(CommunicatorSignalling(ws), camera=camera)
            add_track = client.pc.addTrack

            def add(track):  # noqa: ANN001, ANN202 - camera, screen, then the microphone
                if track is client.mic:
                    return None
                sender = add_track(track)
                if track is camera:
                    add_track(screen)
                    add_track(client.mic)
                return sender
            client.pc.addTrack = add
            await client.connect(timeout=60)
            try:
                for _ in range(300):
                    if any(len(images_of(r["body"])) == 2 for r in list(server.requests)):
                        break
                    await asyncio.sleep(0.1)
                await client.say(words48k(4))
                _, user = await client.wait_event("conversation.utterance", timeout=30,
                                                  where=lambda e: e["properties"].get("role") == "user")
                return user
            finally:
                await client.close()
                await _end_sessions()

        user = run(scenario(), 120)
        requests = list(server.requests)
    with_screen = [r["body"] for r in requests if len(images_of(r["body"])) == 2]
    assert with_screen, f"no request carried the screen ({len(requests)} requests)"
    body = with_screen[0]
    assert "the last image is the user's shared screen" in text_of(body)
    camera_image, screen_image = images_of(body)
    assert camera_image.shape == (384, 512, 3) and screen_image.shape == (320, 512, 3)
    assert screen_image.mean() > 200 > camera_image.mean(), "the screen is the white page, the camera the portrait"
    visual = user["properties"]["visual_context"]
    assert "seen: a smiling woman in an orange flight suit" in visual
    assert '"Is the user holding a pen?" yes, a blue pen' in visual
