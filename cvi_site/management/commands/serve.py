"""Start everything OpenCVI needs on this machine as one command: the box's LLM service
(llama-server, unless LLM_URL points at one elsewhere), Daphne (web, API, WebSockets, media) and a
Celery worker. Ctrl-C (or SIGTERM) stops them all cleanly."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run Daphne and a Celery worker together; print the URL to open."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-worker", action="store_true", help="web only (workers run elsewhere)")

    def handle(self, *args, host: str, port: int, no_worker: bool, **options):
        if f"[{host}]" not in settings.LOOPBACK_HOSTS and host not in settings.LOOPBACK_HOSTS and not os.environ.get("DJANGO_ALLOWED_HOSTS") and not settings.PUBLIC_URL:
            raise CommandError(
                f"HOST={host} serves other machines: set DJANGO_ALLOWED_HOSTS to the host names they use "
                "(comma-separated; * accepts any) or PUBLIC_URL to this server's public address")
        bin_dir = os.path.dirname(sys.executable)
        procs: list[tuple[str, subprocess.Popen]] = []
        env = dict(os.environ)
        if not settings.LLM_URL:
            # The box's LLM service, shared by the web process(es) and the worker (llmservice.py).
            from cvi_site.llmservice import service_url, start_llm_service

            self.stdout.write(f"Starting the LLM service (llama-server, {settings.LLM_SLOTS} slots) …")
            try:
                procs.append(("llm", start_llm_service(
                    port=settings.LLM_SERVICE_PORT, log_path=settings.DATA_DIR / "llm-service.log",
                    models_dir=settings.MODELS_DIR)))
            except (RuntimeError, OSError) as exc:
                raise CommandError(f"the LLM service did not start: {exc} (its log: "
                                   f"{settings.DATA_DIR / 'llm-service.log'}; or set LLM_URL to one running elsewhere)")
            env["LLM_URL"] = service_url(settings.LLM_SERVICE_PORT)
        web_cmd = [os.path.join(bin_dir, "daphne"), "-b", host, "-p", str(port), "cvi_site.asgi:application"]
        procs.append(("web", subprocess.Popen(web_cmd, env=env)))
        if not no_worker:
            worker_cmd = [
                os.path.join(bin_dir, "celery"), "-A", "cvi_site", "--quiet", "worker",  # no banner
                "--loglevel", settings.LOG_LEVEL.lower(),
                "--concurrency", str(settings.CELERY_WORKER_CONCURRENCY),
                "--hostname", f"opencvi@{os.uname().nodename}",
                # Embedded beat: housekeeping (stale conversations and face jobs) needs no extra process.
                "--beat", "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME,
            ]
            procs.append(("worker", subprocess.Popen(worker_cmd, env=env)))

        # Print the URL once Daphne accepts connections, so it works when someone opens it.
        import socket

        deadline = time.monotonic() + 60
        web = dict(procs)["web"]
        while time.monotonic() < deadline and web.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1" if host in ("0.0.0.0", "::") else host, port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        shown = "localhost" if host in ("0.0.0.0", "127.0.0.1", "::") else host
        base = settings.PUBLIC_URL or f"http://{shown}:{port}"
        self.stdout.write(self.style.SUCCESS(f"\nOpenCVI is running: open {base}/  (health: {base}/healthz)"))
        if not settings.PUBLIC_URL:
            self.stdout.write(self.style.WARNING(
                "PUBLIC_URL is not set: links this server emits (conversation_url, recordings in webhooks) use "
                "the host of the API request that created each conversation. Set PUBLIC_URL to this server's "
                "public address in production."))
        self.stdout.write("Press Ctrl-C to stop.\n")

        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        while not stopping:
            for name, proc in procs:
                if proc.poll() is not None:
                    self.stderr.write(f"{name} exited with status {proc.returncode}; stopping the rest.")
                    exit_code = proc.returncode or 1
                    stopping = True
            time.sleep(0.3)
        for _, proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.stdout.write("Stopped.")
        if exit_code:
            sys.exit(exit_code)
