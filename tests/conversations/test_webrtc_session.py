"""Two aiortc peers over loopback: the headless client (bench.client) talks
to a real session through the real consumer, with the real embedded engines. Speech is made
by eSpeak NG; the reply audio, face video and the protocol events come back over WebRTC."""
from __future__ import annotations

import asyncio
import json

import av
import numpy as np
import pytest
from channels.testing import WebsocketCommunicator

from bench.client import CVIClient
from conversations.models import Conversation, Utterance
from conversations.realtime.audio import StreamResampler
from conversations.realtime.engines.base import VoiceOptions
from cvi_site.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class CommunicatorSignalling:
    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.ws = communicator

    async def send_json(self, data):
        await self.ws.send_to(text_data=json.dumps(data))

    async def receive_json(self, timeout):
        return json.loads(await self.ws.receive_from(timeout=timeout))

    async def close(self):
        await self.ws.disconnect()


def speech48k(text: str, voice: str = "en-us") -> np.ndarray:
    from conversations.realtime.engines.registry import get_tts

    tts = get_tts()
    chunks = tts.synthesize_blocking(text, voice=VoiceOptions(voice=voice, language="en"))
    pcm = np.concatenate([c.pcm for c in chunks]).astype(np.float32) / 32768
    rate = chunks[0].sample_rate
    out = StreamResampler(rate, 48_000).process(pcm)
    return (np.clip(out, -1, 1) * 32767).astype(np.int16)


@pytest.fixture
def stock_conversation(account, settings):
    from conversations.services import conversation_create
    from faces.models import Face

    def make(**extra):
        from faces.services import face_stock_ensure

        # The test database starts with the stock face row only; its assets are in the data dir
        # (built by setup_opencvi, or now if missing).
        list(face_stock_ensure())
        extra.pop("video", None)
        assert Face.objects.get(pk="rstock000001").status == "ready"
        return conversation_create(account=account, data={"pal_id": "pstock000001", "face_id": "rstock000001", **extra})
    return make


LONG_REPLY = (
    "The sea has always called to sailors. Long ago, ships with tall white sails crossed the ocean for months, "
    "carrying spices, silk and stories from one harbour to the next. Storms tested every crew, and the stars "
    "guided them home through the darkest nights."
)


def run(coro, timeout):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def _client(conversation_id: str) -> CVIClient:
    ws = WebsocketCommunicator(application, f"/ws/conversations/{conversation_id}/")
    connected, _ = await ws.connect(timeout=30)
    assert connected
    client = CVIClient(CommunicatorSignalling(ws))
    await client.connect(timeout=60)
    return client


async def _end_sessions():
    from conversations.live.registry import SESSIONS

    for session in list(SESSIONS.values()):
        await session.end("test over", record=False)


def test_a_spoken_question_gets_a_spoken_reply_with_face_video(stock_conversation):
    conv = stock_conversation(video=True)

    async def scenario():
        client = await _client(conv.id)
        try:
            await client.wait_event("system.replica_joined", timeout=20)
            # The stock PAL greets first (never interruptible); talk once it has finished.
            t_greeted, greeting = await client.wait_event("conversation.replica.stopped_speaking", timeout=30)
            assert greeting["properties"]["interrupted"] is False
            t_voiced = await client.say(speech48k("What is the capital of France?"))
            _, user = await client.wait_event("conversation.utterance", timeout=60, after=t_greeted + 0.1,
                                              where=lambda e: e["properties"].get("role") == "user")
            assert "capital" in user["properties"]["speech"].lower()
            t_started, _ = await client.wait_event("conversation.replica.started_speaking", timeout=60, after=t_voiced)
            _, stopped = await client.wait_event("conversation.replica.stopped_speaking", timeout=60, after=t_started)
            _, replica = await client.wait_event("conversation.utterance", timeout=10, after=t_started,
                                                 where=lambda e: e["properties"].get("role") == "replica")
            assert replica["properties"]["speech"].strip()
            first_audio = client.first_reply_audio_after(t_voiced)
            assert first_audio is not None, "no reply audio arrived"
            # Events arrive in protocol order.
            order = [e["event_type"] for t, e in client.received.events if t > t_greeted + 0.1 and e["event_type"] in ("conversation.utterance", "conversation.replica.started_speaking",
                                            "conversation.replica.stopped_speaking")]
            assert order[:2] == ["conversation.utterance", "conversation.replica.started_speaking"]
            assert order.index("conversation.replica.stopped_speaking") > 1
            fps = client.video_fps()
            assert 20 <= fps <= 30, fps
            assert client.received.last_video is not None and client.received.last_video.mean() > 20
            return stopped
        finally:
            await client.close()
            await _end_sessions()

    stopped = run(scenario(), 240)
    assert stopped["properties"]["duration"] > 0.3
    rows = list(Utterance.objects.filter(conversation=conv).order_by("id"))
    assert [r.role for r in rows[:3]] == ["assistant", "user", "assistant"]  # greeting, question, answer
    latency = rows[2].latency
    assert latency.get("llm_first_token_ms") is not None


def test_barge_in_through_the_transport_stops_reply_audio(stock_conversation):
    conv = stock_conversation(audio_only=True)

    async def scenario():
        client = await _client(conv.id)
        try:
            await client.wait_event("system.replica_joined", timeout=20)
            t_greeted, _ = await client.wait_event("conversation.replica.stopped_speaking", timeout=30)
            # A long reply to cut: the client makes the replica say it (conversation.echo).
            await client.send("conversation.echo", {"modality": "text", "text": LONG_REPLY})
            t_started, _ = await client.wait_event("conversation.replica.started_speaking", timeout=60,
                                                   after=t_greeted)
            await asyncio.sleep(1.5)
            t_cut = await client.say(speech48k("Wait, stop please, I have a question.", voice="en-us+m3"))
            t_stop, stopped = await client.wait_event("conversation.replica.stopped_speaking", timeout=20,
                                                      after=t_started)
            debug = [(round(t - t_started, 2), e["event_type"], e.get("properties")) for t, e in client.received.events]
            assert stopped["properties"]["interrupted"] is True, (round(t_cut - t_started, 2), debug)
            # The reply was cut while the person was still talking, not after they finished.
            assert t_stop < t_cut + 0.3
            try:
                t_next, _ = await client.wait_event("conversation.replica.started_speaking", timeout=30, after=t_stop)
            except TimeoutError:
                t_next = t_stop + 3
            # Between the cut and the next reply, no reply audio reached the client.
            loud = [t for t, peak in client.received.audio_frames if t_stop + 0.25 < t < t_next and peak >= 500]
            assert not loud, f"{len(loud)} loud frames after the interruption"
        finally:
            await client.close()
            await _end_sessions()

    run(scenario(), 240)
    replies = list(Utterance.objects.filter(conversation=conv, role="assistant").order_by("id"))
    assert [r.interrupted for r in replies[:2]] == [False, True]  # the greeting, then the cut reply
    assert replies[1].content and replies[1].content in LONG_REPLY


def test_a_recorded_call_gives_one_file_with_the_face_the_reply_and_the_person(stock_conversation, api, settings, tmp_path):
    """enable_recording: the face video, the replica's voice and the person's microphone end up
    in one MP4, announced by application.recording_ready and served by the API (with its key)."""
    conv = stock_conversation(properties={"enable_recording": True})

    async def scenario():
        from conversations.live.registry import SESSIONS

        client = await _client(conv.id)
        try:
            t_greeted, _ = await client.wait_event("conversation.replica.stopped_speaking", timeout=30)
            await asyncio.sleep(1.0)
            await client.say(speech48k("I would like to record this call, please.", voice="en-us+m3"))
            await asyncio.sleep(0.5)
        finally:
            await client.close()
        # The call ends before the replica answers: the last seconds hold the person's voice only.
        await SESSIONS[conv.id].end("end_conversation_endpoint_hit")

    run(scenario(), 180)
    conv.refresh_from_db()
    assert conv.recording_file.endswith(f"{conv.id}.mp4") and conv.recording_duration > 3
    event = conv.events.get(event_type="application.recording_ready")
    assert event.properties["storage_uri"].endswith(f"/v2/conversations/{conv.id}/recording")
    assert event.properties["duration"] == conv.recording_duration

    r = api.get(f"/v2/conversations/{conv.id}/recording")
    assert r.status_code == 200 and r["Content-Type"] == "video/mp4"
    path = tmp_path / "download.mp4"
    path.write_bytes(b"".join(r.streaming_content))
    with av.open(str(path)) as c:
        assert {s.type: s.codec_context.name for s in c.streams} == {"audio": "aac", "video": "h264"}
        video = c.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (512, 512)
    with av.open(str(path)) as c:
        decoded = list(c.decode(video=0))
        frames = [f.to_ndarray(format="rgb24") for f in decoded]
        video_end = max(f.time for f in decoded)  # frames carry the call's time (fewer when thinned)
    with av.open(str(path)) as c:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    seconds = len(audio) / 48_000
    assert abs(video_end - seconds) < 1.0  # video and audio cover the same call
    assert frames[len(frames) // 2].mean() > 40  # the face, not black
    # Loudness per 100 ms: the greeting, a quiet gap, then the person's question (mixed in).
    level = np.sqrt(np.mean(audio[: len(audio) // 4800 * 4800].reshape(-1, 4800) ** 2, axis=1))
    voiced = level > 0.02
    assert voiced[: len(voiced) // 3].any(), "no greeting in the recording"
    assert voiced[-25:].sum() >= 5, "the person's voice is missing from the recording"
    assert api.get(f"/v2/conversations/{conv.id}").json()["recording_url"].endswith("/recording")

    # A hard delete erases the recording with the transcript.
    recording = settings.DATA_DIR / conv.recording_file
    assert recording.exists()
    assert api.delete(f"/v2/conversations/{conv.id}?hard=true").status_code == 204
    assert not recording.exists()
