"""The frame-processor machinery: ordering, system frames first, flushing, bounds, cleanup."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
from tests.conversations.realtime.realtime_fakes import run

from conversations.realtime.frames import (
    DataFrame,
    Frame,
    InputAudioFrame,
    InterruptionFrame,
    LLMTextFrame,
    TurnDiscardFrame,
    UserStartedSpeakingFrame,
)
from conversations.realtime.processors import FrameProcessor, FrameQueue, Pipeline


class Recorder(FrameProcessor):
    """Records what reaches it; takes ``delay`` seconds per data frame; ``gate`` blocks it."""

    def __init__(self, delay: float = 0.0, gate: asyncio.Event | None = None) -> None:
        super().__init__(name="recorder", queue_size=4)
        self.delay = delay
        self.gate = gate
        self.seen: list[Frame] = []
        self.cancelled = 0

    async def process_frame(self, frame: Frame) -> None:
        if isinstance(frame, DataFrame):
            try:
                if self.gate is not None:
                    await self.gate.wait()
                await asyncio.sleep(self.delay)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        self.seen.append(frame)
        await self.push_frame(frame)


def text(s: str, reply_id: int | None = None) -> LLMTextFrame:
    return LLMTextFrame(text=s, reply_id=reply_id)


def test_data_in_order_and_system_frames_jump_the_queue() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        a, b = Recorder(gate=gate), Recorder()
        pipe = Pipeline([a, b])
        await pipe.start()
        for s in "xyz":
            await a.queue_frame(text(s))
        await a.queue_frame(UserStartedSpeakingFrame())
        # the system frame went through both processors while x, y, z wait behind the gate
        assert [f.name for f in b.seen] == ["UserStartedSpeakingFrame"]
        gate.set()
        for _ in range(50):
            await asyncio.sleep(0)
        assert [f.text for f in b.seen if isinstance(f, LLMTextFrame)] == ["x", "y", "z"]
        await pipe.close()

    run(main(), 10)


def test_interruption_cancels_in_flight_work_and_flushes_queued_data() -> None:
    async def main() -> None:
        a, b = Recorder(delay=10.0), Recorder()
        pipe = Pipeline([a, b])
        await pipe.start()
        for s in "abc":
            await a.queue_frame(text(s))
        await asyncio.sleep(0.01)  # a is now stuck in "a" for 10 s
        assert len(a.queue) == 2
        await a.queue_frame(InterruptionFrame())
        assert a.cancelled == 1 and len(a.queue) == 0
        assert [f.name for f in b.seen] == ["InterruptionFrame"]
        # the processor works again after the flush
        a.delay = 0.0
        await a.queue_frame(text("d"))
        for _ in range(20):
            await asyncio.sleep(0)
        assert [f.text for f in b.seen if isinstance(f, LLMTextFrame)] == ["d"]
        await pipe.close()

    run(main(), 10)


def test_discard_drops_only_that_replys_frames() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        a, b = Recorder(gate=gate), Recorder()
        pipe = Pipeline([a, b])
        await pipe.start()
        await a.queue_frame(text("1a", reply_id=1))
        await a.queue_frame(text("2a", reply_id=2))
        await a.queue_frame(text("1b", reply_id=1))
        await asyncio.sleep(0)
        await a.queue_frame(TurnDiscardFrame(reply_id=1))  # cancels "1a" in flight, drops "1b"
        gate.set()
        for _ in range(20):
            await asyncio.sleep(0)
        assert [f.text for f in b.seen if isinstance(f, LLMTextFrame)] == ["2a"]
        assert a.cancelled == 1
        await pipe.close()

    run(main(), 10)


def test_bounded_queue_backpressure_and_stale_audio_dropped_and_counted() -> None:
    async def main() -> None:
        q = FrameQueue(2)
        await q.put(text("a"))
        await q.put(text("b"))
        blocked = asyncio.ensure_future(q.put(text("c")))
        await asyncio.sleep(0.01)
        assert not blocked.done()  # full: the producer waits
        assert (await q.get()).text == "a"
        await asyncio.wait_for(blocked, 1)
        assert len(q) == 2

        audio = FrameQueue(100, max_audio_ms=100)
        for i in range(10):  # 10 x 20 ms pushed, 100 ms kept
            audio.put_nowait(InputAudioFrame(pcm=np.full(320, i, np.float32)))
        assert audio.audio_ms == pytest.approx(100)
        assert audio.dropped_audio_ms == pytest.approx(100) and audio.dropped_frames == 5
        assert (await audio.get()).pcm[0] == 5  # the oldest were dropped

    run(main(), 10)


def test_close_cancels_and_awaits_every_task() -> None:
    async def main() -> None:
        before = asyncio.all_tasks()
        a = Recorder(delay=30.0)
        b = Recorder()
        pipe = Pipeline([a, b])
        await pipe.start()
        side = a.create_task(asyncio.sleep(30), name="side")
        await a.queue_frame(text("slow"))
        await asyncio.sleep(0.01)
        tasks = pipe.owned_tasks()
        assert len(tasks) == 3
        await pipe.close()
        assert all(t.done() for t in tasks) and side.cancelled()
        assert pipe.owned_tasks() == []
        assert asyncio.all_tasks() == before

    run(main(), 10)


def test_a_failing_frame_is_reported_and_the_processor_goes_on() -> None:
    class Boom(FrameProcessor):
        async def process_frame(self, frame: Frame) -> None:
            if isinstance(frame, LLMTextFrame) and frame.text == "boom":
                raise RuntimeError("boom")
            await self.push_frame(frame)

    async def main() -> None:
        boom, rec = Boom(), Recorder()
        errors: list[BaseException] = []
        boom.on_error = lambda p, exc, f: errors.append(exc)
        pipe = Pipeline([boom, rec])
        await pipe.start()
        await boom.queue_frame(text("boom"))
        await boom.queue_frame(text("ok"))
        for _ in range(20):
            await asyncio.sleep(0)
        assert [type(e) for e in errors] == [RuntimeError]
        assert [f.text for f in rec.seen] == ["ok"]
        await pipe.close()

    run(main(), 10)


def test_cancelling_the_closer_is_not_swallowed() -> None:
    async def main() -> None:
        a = Recorder(delay=30.0)
        pipe = Pipeline([a])
        await pipe.start()
        await a.queue_frame(text("slow"))
        await asyncio.sleep(0.01)
        closer = asyncio.ensure_future(pipe.close())
        closer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closer
        await pipe.close()
        assert pipe.owned_tasks() == []

    run(main(), 10)
