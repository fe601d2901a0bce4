"""Site-wide Celery tasks."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="cvi_site.ping")
def ping(value: str = "pong") -> dict:
    """Round trip through the broker and a worker (health checks and tests)."""
    import os

    return {"value": value, "worker_pid": os.getpid()}


# Registered with the worker from here (Celery autodiscovers ``tasks`` modules).
from cvi_site.webhooks import webhook_attempt, webhook_retry_overdue  # noqa: E402,F401
