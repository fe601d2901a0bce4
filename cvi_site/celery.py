"""The Celery app. Broker and backend come from settings (filesystem by default, Redis when
REDIS_URL is set)."""
from __future__ import annotations

import os
import warnings

from celery import Celery
from celery.signals import after_setup_logger
from celery.exceptions import SecurityWarning

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cvi_site.settings")

# Run as root (a box where `make run` runs as root), Celery warns that a root worker unpickling a
# message could run code an attacker put on the broker. This worker accepts JSON only
# (CELERY_ACCEPT_CONTENT), so no message can carry code; and Celery itself refuses to start as root
# if pickle is ever accepted. The warning is therefore noise here and is not printed.
warnings.filterwarnings("ignore", category=SecurityWarning, message="You're running the worker with superuser")

app = Celery("opencvi")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
def _quiet_routine_task_lines(logger, loglevel, **kwargs) -> None:  # noqa: ANN001 - Celery's signal
    """"Task … received / succeeded" for every housekeeping run (every 15 s) would bury the rest;
    failures and retries are warnings and errors, and still show. ``LOG_LEVEL=DEBUG`` shows all."""
    import logging

    if loglevel > logging.DEBUG:
        for name in ("celery.app.trace", "celery.worker.strategy", "celery.beat"):
            logging.getLogger(name).setLevel(logging.WARNING)

