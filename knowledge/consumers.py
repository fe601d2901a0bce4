"""``/ws/documents/``: pushes the status and progress of an account's documents to the PAL
Maker's Knowledge page while they are ingested. The ingestion job runs in the worker, so the
consumer watches the account's rows (every ``WATCH_S``) and pushes what changed."""
from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from faces.consumers import _same_origin

logger = logging.getLogger(__name__)

WATCH_S = 0.5


@database_sync_to_async
def _states(user) -> dict[str, dict]:  # noqa: ANN001
    from knowledge.selectors import document_list

    return {d.id: {"document_id": d.id, "status": d.status, "progress": d.progress,
                   "error_code": d.error_code, "error_message": d.error_message}
            for d in document_list(account=user)[:200]}


class DocumentStatusConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self._last: dict[str, dict] = {}
        self._watch: asyncio.Task | None = None
        if self.user is None or not self.user.is_authenticated or not _same_origin(self.scope):
            await self.close(code=4403)
            return
        await self.accept()
        self._watch = asyncio.create_task(self._watch_rows())

    async def disconnect(self, code) -> None:  # noqa: ANN001
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None

    async def _watch_rows(self) -> None:
        while True:
            try:
                states = await _states(self.user)
            except Exception:  # noqa: BLE001 - a locked SQLite file now and then: try again next tick
                logger.debug("document states read failed", exc_info=True)
            else:
                for doc_id, state in states.items():
                    if self._last.get(doc_id) != state:
                        await self.send_json(state)
                for doc_id in set(self._last) - set(states):
                    await self.send_json({"document_id": doc_id, "status": "deleted"})
                self._last = states
            await asyncio.sleep(WATCH_S)
