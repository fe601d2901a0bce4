"""A call's recording (``properties.enable_recording``): started with the session, fed every
participant's microphone and (through the media pump) the reply's audio and face video, and when
the call ends closed, stored through the event store, or its failure reported as a ``system.error``."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async

from conversations.realtime.events import ErrorOccurred, Event

logger = logging.getLogger(__name__)


class SessionRecording:
    def __init__(self, conversation_id: str, video_size: tuple[int, int] | None, *, store: Any,
                 base_url: str, on_event: Callable[[Event], Any]) -> None:
        from conversations.realtime.recorder import CallRecorder
        from conversations.services import recording_path_for

        self.conversation_id = conversation_id
        self._store, self._base_url, self._on_event = store, base_url, on_event
        self.recorder = CallRecorder(recording_path_for(conversation_id, video=video_size is not None),
                                     video_size=video_size)
        self.recorder.start()

    def add_user_audio(self, pcm, rate: int, channels: int, *, source: Any) -> None:  # noqa: ANN001 - int16 PCM
        self.recorder.add_user_audio(pcm, rate, channels, source=source)

    async def finish(self) -> None:
        """Close the file (encoding the rest off the event loop) and store it."""
        recording = await asyncio.to_thread(self.recorder.close)
        if recording is None:
            if self.recorder.error:
                self._on_event(ErrorOccurred(reason=f"the recording failed: {self.recorder.error}",
                                             engine="recorder", code="recording_failed"))
            return
        logger.info("recording %s: %.1f s, %d bytes", recording.path.name, recording.duration_s, recording.size_bytes)
        try:
            await database_sync_to_async(self._store.store_recording)(recording, self._base_url or "http://localhost:8000")
        except Exception:  # noqa: BLE001 - the shutdown must go on; the file stays for an operator
            logger.exception("could not store the recording %s", recording.path)
