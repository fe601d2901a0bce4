"""The conversation page's WebSocket: join, signalling (offer/answer), events mirrored from the
data channel, and protocol messages from the page's JS client.

Client → server: ``{"type": "offer", "sdp": "..."}``, ``{"type": "message", "message": {<interactions
protocol message>}}``, ``{"type": "ping"}``, ``{"type": "leave"}``.
Server → client: ``{"type": "joined", "conversation": {...}}``, ``{"type": "answer", "sdp": "..."}``,
``{"type": "event", "event": {<protocol event>}}``, ``{"type": "ended", "reason": "..."}``,
``{"type": "error", "code": "...", "message": "..."}``, ``{"type": "pong"}``.
"""
from __future__ import annotations

import hmac
import json
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from conversations.live.config import load_session_config
from conversations.live.registry import CAPACITY, JoinRefused, session_for
from cvi_site.logging import conversation_id_var

logger = logging.getLogger(__name__)

MAX_WS_MESSAGE = 256 * 1024
MAX_SDP = 100_000


class ConversationConsumer(AsyncWebsocketConsumer):
    session = None
    participant = None

    async def connect(self) -> None:
        self.conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        conversation_id_var.set(self.conversation_id)
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode())
        token = (query.get("t") or query.get("token") or [""])[0]
        try:
            # Check who may join from the database first: a refused client must not make the
            # server load engines and open a session.
            config = await database_sync_to_async(load_session_config)(self.conversation_id)
            if config is None:
                raise JoinRefused("not_found", "no such conversation")
            if config.status != "active":
                raise JoinRefused("ended", "this conversation has ended")
            if config.require_auth and not hmac.compare_digest(token.encode(), config.meeting_token.encode()):
                raise JoinRefused("unauthorized", "this conversation is private: a valid meeting token is required")
            session = await session_for(self.conversation_id)
            self.participant = await session.join(self.send_json)
        except JoinRefused as exc:
            await self.send_json({"type": "error", "code": exc.code, "message": str(exc)})
            await self.close(code=4000 + {"not_found": 4, "unauthorized": 3, "ended": 10, "full": 9,
                                             CAPACITY: 13}.get(exc.code, 0))
            return
        self.session = session
        cfg = session.config
        await self.send_json({"type": "joined", "conversation": {
            "conversation_id": cfg.conversation_id, "audio_only": cfg.audio_only or cfg.face_assets is None,
            "closed_captions": cfg.closed_captions, "greenscreen": cfg.greenscreen,
            "ice_servers": [],
        }})

    async def disconnect(self, code: int) -> None:
        if self.session is not None and self.participant is not None:
            await self.session.leave(self.participant)
            self.participant = None

    async def send_json(self, payload: dict) -> None:
        await self.send(text_data=json.dumps(payload, separators=(",", ":"), default=str))

    async def _error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.session is None or self.participant is None:
            return
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        if len(raw) > MAX_WS_MESSAGE:
            await self._error("message_too_large", f"messages are limited to {MAX_WS_MESSAGE} bytes")
            return
        try:
            data = json.loads(raw)
        except ValueError:
            await self._error("bad_message", "messages must be JSON objects")
            return
        if not isinstance(data, dict):
            await self._error("bad_message", "messages must be JSON objects")
            return
        kind = data.get("type")
        if self.session.ended:
            await self.send_json({"type": "ended", "reason": self.session.end_reason})
            return
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "offer":
            sdp = data.get("sdp")
            if not isinstance(sdp, str) or not sdp.startswith("v=0") or len(sdp) > MAX_SDP:
                await self._error("bad_sdp", "the offer must be an SDP string starting with v=0")
                return
            try:
                answer = await self.session.connect_peer(self.participant, sdp, "offer")
            except Exception as exc:  # noqa: BLE001 - aiortc raises many types for bad SDP
                logger.info("bad offer: %s", exc)
                await self._error("bad_sdp", f"the offer could not be used: {exc}")
                return
            await self.send_json({"type": "answer", "sdp": answer})
        elif kind == "message":
            await self.session.handle_client_message(data.get("message"), self.participant)
        elif kind == "leave":
            await self.close()
        elif data.get("message_type") == "conversation":
            # A bare protocol message (as on the data channel) is accepted too.
            await self.session.handle_client_message(data, self.participant)
        else:
            await self._error("bad_message", f"unknown message type {kind!r}")
