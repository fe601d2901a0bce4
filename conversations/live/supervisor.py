"""A live call's shutdown supervisor: the timers that end it, with the documented reasons, and
the end (or a message) that arrives from another process over the channel layer.

- before anyone connects: ``participant_absent_timeout`` → ``participant_absent_timeout``;
- ``max_call_duration`` after media started → ``max_call_duration``;
- ``participant_left_timeout`` after the last participant left (or, with the perception layer's
  ``absent_counts_as_left``, after nobody was in view that long) → ``participant_left_timeout``.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conversations.session import ConversationSession

#: how often the timers are checked (s)
TICK_S = 0.25


async def watch_timers(session: ConversationSession) -> None:
    from conversations.services import Shutdown

    cfg = session.config
    created_mono = time.monotonic() - max(0.0, time.time() - cfg.created_at_epoch)
    while not session.ended:
        await asyncio.sleep(TICK_S)
        now = time.monotonic()
        reason = ""
        if session.started_monotonic is None:
            if now - created_mono > cfg.participant_absent_timeout:
                reason = Shutdown.ABSENT_TIMEOUT
        elif now - session.started_monotonic > cfg.max_call_duration:
            reason = Shutdown.MAX_DURATION
        elif session.left_at is not None and now - session.left_at >= cfg.participant_left_timeout:
            reason = Shutdown.LEFT_TIMEOUT
        elif session.perception_policy is not None and \
                session.perception_policy.counts_as_left(cfg.participant_left_timeout):
            reason = Shutdown.LEFT_TIMEOUT
        if reason:
            session.spawn(session.end(reason), "end")
            return


async def listen(session: ConversationSession, layer: Any) -> None:  # noqa: ANN401 - a channel layer
    """REST ``end`` (from any server process) and app messages arrive here over the channel layer."""
    while not session.ended:
        message = await layer.receive(session.channel_name)
        if message.get("type") == "session.end":
            # The REST side already recorded the end; just stop the live parts.
            session.spawn(session.end(message.get("reason", ""), record=False), "end")
            return
        if message.get("type") == "session.message":
            await session.handle_client_message(message.get("message"))
