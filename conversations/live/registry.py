"""The live sessions of this server process, and admission control.

``session_for`` opens a conversation's session on its first join (one per conversation per
process) and refuses a new call when the process holds as many as it can at its latency goal
(``MAX_LIVE_CALLS_PER_PROCESS``); a refused conversation ends with the reason rather than being
left half-alive.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async
from django.conf import settings

from conversations.live.config import load_session_config
from conversations.live.sink import EventStore

if TYPE_CHECKING:
    from conversations.session import ConversationSession

logger = logging.getLogger(__name__)

#: the join refusal code when this server process holds all the calls it can
CAPACITY = "server_at_capacity"


class JoinRefused(Exception):
    """A participant may not join; ``code`` and ``str()`` go to that client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


SESSIONS: dict[str, ConversationSession] = {}
_opening: dict[str, asyncio.Lock] = {}
#: sessions being opened right now (counted against the process's limit with the live ones)
_reserved: set[str] = set()


def live_session_count() -> int:
    """Live calls this process holds (and is opening): what admission control counts."""
    return sum(1 for s in SESSIONS.values() if not s.ended) + len(_reserved)


def _admit() -> None:
    """Refuse a new call when this process already holds as many as it can at its latency goal
    (``MAX_LIVE_CALLS_PER_PROCESS``); the account's own concurrency limit applies on top."""
    limit = settings.MAX_LIVE_CALLS_PER_PROCESS
    if live_session_count() >= limit:
        raise JoinRefused(CAPACITY, f"this server is holding as many live calls as it can ({limit}); "
                                    "please try again in a few minutes")


async def session_for(conversation_id: str) -> ConversationSession:
    """The live session of a conversation in this process, opened on first join."""
    from conversations.session import ConversationSession

    lock = _opening.setdefault(conversation_id, asyncio.Lock())
    async with lock:
        session = SESSIONS.get(conversation_id)
        if session is not None and not session.ended:
            return session
        config = await database_sync_to_async(load_session_config)(conversation_id)
        if config is None:
            raise JoinRefused("not_found", "no such conversation")
        if config.status != "active":
            raise JoinRefused("ended", "this conversation has ended")
        try:
            _admit()
        except JoinRefused as exc:
            # Not left half-alive: the conversation ends with the reason (its webhook and the
            # account's concurrency count follow), and nothing was opened for it.
            logger.warning("join of %s refused: %s", conversation_id, exc)
            await database_sync_to_async(EventStore(conversation_id).refuse)(exc.code, str(exc))
            raise
        _reserved.add(conversation_id)
        try:
            session = ConversationSession(config, on_ended=lambda s: SESSIONS.pop(s.id, None))
            try:
                await session.open()
            except Exception as exc:
                logger.exception("session %s failed to start", conversation_id)
                from conversations.services import Shutdown

                await session.end(Shutdown.STARTUP_ERROR)
                raise JoinRefused("startup_failed", f"the conversation could not start: {exc}") from exc
            SESSIONS[conversation_id] = session
        finally:
            _reserved.discard(conversation_id)
        return session
