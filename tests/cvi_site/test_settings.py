"""Settings load in both modes; bad values stop start-up with a one-line message naming them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'db': s.DATABASES['default']['ENGINE'], 'layer': s.CHANNEL_LAYERS['default']['BACKEND'], "
    "'broker': s.CELERY_BROKER_URL, 'data': str(s.DATA_DIR)}))"
)


def _run(env_overrides: dict[str, str], tmp_path: Path, code: str = PROBE) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"DJANGO_SETTINGS_MODULE": "cvi_site.settings", "OPENCVI_DATA_DIR": str(tmp_path / "data")})
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_embedded_default_needs_no_server(tmp_path):
    proc = _run({}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["db"] == "django.db.backends.sqlite3"
    assert got["layer"] == "channels.layers.InMemoryChannelLayer"
    assert got["broker"] == "filesystem://"
    assert got["data"] == str(tmp_path / "data")


def test_scaled_out_mode_uses_redis_and_postgres(tmp_path):
    proc = _run({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test", "REDIS_URL": "redis://127.0.0.1:6379/3"}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["db"] == "django.db.backends.postgresql"
    assert got["layer"] == "channels_redis.core.RedisChannelLayer"
    assert got["broker"] == "redis://127.0.0.1:6379/3"


def test_bad_database_url_stops_startup_naming_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update({"DATABASE_URL": "postgres://user@host:notaport/db", "OPENCVI_DATA_DIR": str(tmp_path / "d")})
    proc = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "DATABASE_URL" in lines[0]


def test_unsupported_scheme_and_bad_redis_url_are_named(tmp_path):
    proc = _run({"DATABASE_URL": "mysql://root@localhost/x"}, tmp_path)
    assert proc.returncode != 0 and "DATABASE_URL" in proc.stderr
    proc = _run({"REDIS_URL": "http://127.0.0.1:6379"}, tmp_path)
    assert proc.returncode != 0 and "REDIS_URL" in proc.stderr


def test_bad_boolean_is_named(tmp_path):
    proc = _run({"DJANGO_DEBUG": "maybe"}, tmp_path)
    assert proc.returncode != 0 and "DJANGO_DEBUG" in proc.stderr


def test_no_pending_migrations(db):
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
