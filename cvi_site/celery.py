"""The Celery app. Broker and backend come from settings (filesystem by default, Redis when
REDIS_URL is set)."""
from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cvi_site.settings")

app = Celery("opencvi")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
