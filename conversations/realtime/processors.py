"""Frame processors and the pipeline that chains them.

Each :class:`FrameProcessor` owns one data task that takes :class:`DataFrame` s from a
bounded input queue, in order. :class:`SystemFrame` s never wait in that queue: they are
handled in the caller's task as soon as they are queued, so an interruption reaches the end
of the chain before any data that was produced earlier. On an interruption a processor
cancels the data frame it is working on (an LLM stream, a synthesis), drops its queued data
and restarts its data task, then passes the interruption on; a :class:`TurnDiscardFrame`
does the same for one reply only.

Every task is created through its owner (``FrameProcessor.create_task``) and is cancelled
and awaited by ``close()``. ``CancelledError`` is never swallowed except where we cancelled
the task ourselves and are not being cancelled too.
"""
from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from .frames import (
    CancelFrame,
    DataFrame,
    ErrorFrame,
    Frame,
    InputAudioFrame,
    InterruptionFrame,
    SystemFrame,
    TurnDiscardFrame,
)

logger = logging.getLogger(__name__)

ErrorHandler = Callable[["FrameProcessor", BaseException, Frame | None], None]


class FrameQueue:
    """A bounded FIFO of data frames.

    ``put`` waits while the queue holds ``maxsize`` frames (back-pressure between stages).
    ``put_nowait`` never waits: it is for producers that must not block (the mic). For
    :class:`InputAudioFrame` it keeps at most ``max_audio_ms`` of audio, dropping the oldest
    (stale audio is worth nothing to a live conversation) and counting what it dropped.
    """

    def __init__(self, maxsize: int = 256, *, max_audio_ms: float | None = None) -> None:
        self.maxsize = maxsize
        self.max_audio_ms = max_audio_ms
        self._items: collections.deque[DataFrame] = collections.deque()
        self._audio_ms = 0.0
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()
        self.dropped_frames = 0
        self.dropped_audio_ms = 0.0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def audio_ms(self) -> float:
        return self._audio_ms

    def _update_events(self) -> None:
        if self._items:
            self._not_empty.set()
        else:
            self._not_empty.clear()
        if len(self._items) < self.maxsize:
            self._not_full.set()
        else:
            self._not_full.clear()

    def _append(self, frame: DataFrame) -> None:
        self._items.append(frame)
        if isinstance(frame, InputAudioFrame):
            self._audio_ms += frame.duration_ms
        self._update_events()

    def put_nowait(self, frame: DataFrame) -> None:
        self._append(frame)
        if isinstance(frame, InputAudioFrame) and self.max_audio_ms is not None:
            while self._audio_ms > self.max_audio_ms:
                if not self._drop_oldest_audio():
                    break
        while len(self._items) > self.maxsize:
            # over the bound with no audio to shed: drop the oldest frame (never silently)
            old = self._items.popleft()
            self._account_removed(old, dropped=True)
        self._update_events()

    def _drop_oldest_audio(self) -> bool:
        for i, old in enumerate(self._items):
            if isinstance(old, InputAudioFrame):
                del self._items[i]
                self._account_removed(old, dropped=True)
                return True
        return False

    def _account_removed(self, frame: DataFrame, *, dropped: bool) -> None:
        if isinstance(frame, InputAudioFrame):
            self._audio_ms -= frame.duration_ms
            if dropped:
                self.dropped_audio_ms += frame.duration_ms
        if dropped:
            self.dropped_frames += 1

    async def put(self, frame: DataFrame) -> None:
        while len(self._items) >= self.maxsize:
            await self._not_full.wait()
        self._append(frame)

    async def get(self) -> DataFrame:
        while not self._items:
            await self._not_empty.wait()
        frame = self._items.popleft()
        self._account_removed(frame, dropped=False)
        self._update_events()
        return frame

    def remove_where(self, predicate: Callable[[DataFrame], bool]) -> int:
        """Drop (without counting them as stale) the frames matching ``predicate``."""
        kept = [f for f in self._items if not predicate(f)]
        removed = len(self._items) - len(kept)
        if removed:
            self._items = collections.deque(kept)
            self._audio_ms = sum(f.duration_ms for f in kept if isinstance(f, InputAudioFrame))
            self._update_events()
        return removed

    def clear(self) -> int:
        return self.remove_where(lambda _f: True)


class FrameProcessor:
    """Base processor: override :meth:`process_frame` (call :meth:`push_frame` to pass on).

    ``flush_on_interruption``: whether an interruption drops this processor's queued data and
    cancels its current data frame (False for the mic input: user audio is not the replica's
    to throw away).
    """

    flush_on_interruption: bool = True

    def __init__(self, *, name: str | None = None, queue_size: int = 256,
                 max_audio_ms: float | None = None) -> None:
        self.name = name or type(self).__name__
        self.queue = FrameQueue(queue_size, max_audio_ms=max_audio_ms)
        self.next: FrameProcessor | None = None
        self.prev: FrameProcessor | None = None
        self.on_error: ErrorHandler | None = None
        self._data_task: asyncio.Task[None] | None = None
        self._current: DataFrame | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._closed = False

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._start_data_task()

    def _start_data_task(self) -> None:
        self._data_task = asyncio.get_running_loop().create_task(
            self._run(), name=f"{self.name}.data")

    async def close(self) -> None:
        """Cancel and await every task this processor owns."""
        self._closed = True
        tasks = [t for t in (self._data_task, *self._tasks) if t is not None]
        self._data_task = None
        self._tasks.clear()
        await cancel_and_wait(tasks)
        self.queue.clear()

    @property
    def closed(self) -> bool:
        return self._closed

    def create_task(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """A task owned by this processor: cancelled and awaited on close; errors reported."""
        task = asyncio.get_running_loop().create_task(coro, name=name or f"{self.name}.task")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._report(exc, None)

    def owned_tasks(self) -> list[asyncio.Task[Any]]:
        tasks = list(self._tasks)
        if self._data_task is not None:
            tasks.append(self._data_task)
        return tasks

    # ------------------------------------------------------------------ queueing
    async def queue_frame(self, frame: Frame) -> None:
        """Give this processor a frame: system frames are handled now, data frames queued."""
        if self._closed:
            return
        if isinstance(frame, SystemFrame):
            await self._handle_system(frame)
        else:
            assert isinstance(frame, DataFrame)
            await self.queue.put(frame)

    def queue_frame_nowait(self, frame: DataFrame) -> None:
        """Queue a data frame without waiting (sync producers such as the mic)."""
        if not self._closed:
            self.queue.put_nowait(frame)

    async def push_frame(self, frame: Frame) -> None:
        """Pass a frame to the next processor (the end of the chain drops it)."""
        if self.next is not None:
            await self.next.queue_frame(frame)

    async def _handle_system(self, frame: SystemFrame) -> None:
        if isinstance(frame, InterruptionFrame) and self.flush_on_interruption:
            self.queue.clear()
            await self._cancel_current()
        elif isinstance(frame, TurnDiscardFrame):
            rid = frame.reply_id
            self.queue.remove_where(lambda f: f.reply_id == rid)
            if self._current is not None and self._current.reply_id == rid:
                await self._cancel_current()
        elif isinstance(frame, CancelFrame):
            self.queue.clear()
        try:
            await self.process_frame(frame)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the session
            self._report(exc, frame)

    async def _cancel_current(self) -> None:
        """Cancel the data frame in progress and restart the data task."""
        task = self._data_task
        if task is None or task.done():
            return
        if task is asyncio.current_task():
            # our own data task asked for it (e.g. it emitted the interruption): nothing is
            # in flight besides the caller itself, which goes on with the next frame
            return
        await cancel_and_wait([task])
        self._current = None
        if not self._closed:
            self._start_data_task()

    async def _run(self) -> None:
        while True:
            frame = await self.queue.get()
            self._current = frame
            try:
                await self.process_frame(frame)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - report and go on with the next frame
                self._report(exc, frame)
            finally:
                self._current = None

    def _report(self, exc: BaseException, frame: Frame | None) -> None:
        logger.exception("%s failed on %s", self.name, frame.name if frame else "a task",
                         exc_info=exc)
        if self.on_error is not None:
            try:
                self.on_error(self, exc, frame)
            except Exception:  # noqa: BLE001
                logger.exception("error handler failed")

    # ------------------------------------------------------------------ to override
    async def process_frame(self, frame: Frame) -> None:
        await self.push_frame(frame)


class Pipeline:
    """A chain of processors, first to last. Frames enter at any processor."""

    def __init__(self, processors: Iterable[FrameProcessor]) -> None:
        self.processors = list(processors)
        if not self.processors:
            raise ValueError("a pipeline needs at least one processor")
        for a, b in zip(self.processors, self.processors[1:]):
            a.next = b
            b.prev = a

    async def start(self) -> None:
        for p in self.processors:
            await p.start()

    async def close(self) -> None:
        # last to first, so nothing is pushed into a processor that is already closed
        for p in reversed(self.processors):
            await p.close()

    def owned_tasks(self) -> list[asyncio.Task[Any]]:
        return [t for p in self.processors for t in p.owned_tasks()]


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has finished.

    A task that swallows its cancellation (Python 3.11's ``asyncio.wait_for`` can, when the
    awaited call completes at the moment it is cancelled) is cancelled again until it ends,
    so closing never hangs. The tasks' own ``CancelledError`` is expected and absorbed; if
    the caller itself is cancelled meanwhile, that propagates (``asyncio.wait`` raises it).
    """
    pending = [t for t in tasks if t is not None and not t.done()]
    for t in pending:
        t.cancel()
    for t in pending:
        while not t.done():
            await asyncio.wait({t}, timeout=0.5)
            if not t.done():
                logger.warning("task %s ignored its cancellation; cancelling again", t.get_name())
                t.cancel()
        if not t.cancelled() and t.exception() is not None:
            logger.debug("task %s failed while cancelled", t.get_name(), exc_info=t.exception())


def error_frame_from(exc: BaseException, *, reply_id: int | None = None) -> ErrorFrame:
    from .engines.base import EngineError

    if isinstance(exc, EngineError):
        return ErrorFrame(message=str(exc), engine=exc.engine, code=exc.code, reply_id=reply_id)
    if isinstance(exc, TimeoutError):
        return ErrorFrame(message="an engine did not answer in time", code="timeout",
                          reply_id=reply_id)
    return ErrorFrame(message=f"internal error: {type(exc).__name__}", code="internal_error",
                      reply_id=reply_id)
