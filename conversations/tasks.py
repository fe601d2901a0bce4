"""Conversation housekeeping jobs (run by Celery beat beside the worker)."""
from __future__ import annotations

from celery import shared_task

from conversations import services


@shared_task(name="conversations.conversation_fail_stale")
def conversation_fail_stale() -> int:
    """End conversations nobody joined within participant_absent_timeout, and live ones whose
    server process died (no session left to enforce max_call_duration); remove the half-written
    recordings such a process left behind."""
    ended = services.conversation_fail_stale()
    services.recordings_remove_abandoned()
    return ended
