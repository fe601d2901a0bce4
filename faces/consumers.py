"""``/ws/faces/<face_id>/``: pushes a face's training status and progress to its owner's
browser, so the progress bar moves without the page polling.

Two ways the news arrives:
- With Redis, ``faces.realtime.face_status_broadcast`` (called by the training job in the
  worker) reaches this consumer through the face's group.
- With the embedded in-memory layer, the worker is another process that cannot reach us,
  so the consumer watches the face's row itself (every ``WATCH_S``) and pushes changes. It
  also does that, more slowly, with Redis, so a lost message cannot freeze the bar.
"""
from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import InMemoryChannelLayer
from django.conf import settings

from faces.realtime import face_group, face_state

logger = logging.getLogger(__name__)

WATCH_S = 0.5  # in-memory layer: the consumer is the only way to learn of progress
SAFETY_WATCH_S = 5.0  # Redis layer: pushes arrive by group; this only catches a lost one


def _same_origin(scope) -> bool:
    """Session cookies authenticate this socket, so refuse pages of other sites (CSWSH)."""
    headers = dict(scope.get("headers") or [])
    origin = headers.get(b"origin", b"").decode("latin-1")
    if not origin:
        return True  # not a browser page
    host = headers.get(b"host", b"").decode("latin-1")
    if urlsplit(origin).netloc == host:
        return True
    return origin in settings.CSRF_TRUSTED_ORIGINS


@database_sync_to_async
def _owned_state(user, face_id: str):
    from faces.selectors import face_get_owned

    face = face_get_owned(account=user, face_id=face_id)
    return None if face is None else face_state(face)


class FaceStatusConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.face_id = self.scope["url_route"]["kwargs"]["face_id"]
        self.user = self.scope.get("user")
        self._watch: asyncio.Task | None = None
        self._last: dict | None = None
        self._joined = False
        if self.user is None or not self.user.is_authenticated or not _same_origin(self.scope):
            await self.close(code=4403)
            return
        state = await _owned_state(self.user, self.face_id)
        if state is None:
            await self.close(code=4404)  # not yours or no such face: the same answer
            return
        await self.accept()
        await self._push(state)
        in_memory = self.channel_layer is None or isinstance(self.channel_layer, InMemoryChannelLayer)
        if self.channel_layer is not None:
            await self.channel_layer.group_add(face_group(self.face_id), self.channel_name)
            self._joined = True
        self._watch = asyncio.create_task(self._watch_row(WATCH_S if in_memory else SAFETY_WATCH_S))

    async def disconnect(self, code) -> None:
        if self._watch is not None:
            self._watch.cancel()
            try:
                await self._watch
            except asyncio.CancelledError:
                pass
            self._watch = None
        if self._joined:
            await self.channel_layer.group_discard(face_group(self.face_id), self.channel_name)
            self._joined = False

    async def receive_json(self, content, **kwargs) -> None:
        # The browser may ask for the current state (e.g. after waking from sleep).
        if isinstance(content, dict) and content.get("type") == "refresh":
            state = await _owned_state(self.user, self.face_id)
            if state is not None:
                self._last = None
                await self._push(state)

    async def face_status(self, event: dict) -> None:
        """A push from ``face_status_broadcast`` (group message type ``face.status``)."""
        await self._push(event["state"])

    async def _watch_row(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                state = await _owned_state(self.user, self.face_id)
            except Exception:  # noqa: BLE001 - a locked SQLite file now and then: try again next tick
                logger.debug("face %s: state read failed", self.face_id, exc_info=True)
                continue
            if state is None:  # deleted meanwhile
                await self.send_json({"face_id": self.face_id, "status": "deleted"})
                await self.close()
                return
            await self._push(state)

    async def _push(self, state: dict) -> None:
        if state != self._last:
            self._last = state
            await self.send_json(state)
