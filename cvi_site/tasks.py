"""Site-wide Celery tasks."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="cvi_site.ping")
def ping(value: str = "pong") -> dict:
    """Round trip through the broker and a worker (health checks and tests)."""
    import os

    return {"value": value, "worker_pid": os.getpid()}
