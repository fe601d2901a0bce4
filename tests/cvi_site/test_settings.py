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
    assert got["broker"] == "filesystem://localhost/"
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


PRODUCTION = {"DJANGO_HTTPS": "true", "DJANGO_ALLOWED_HOSTS": "cvi.example.org",
              "DJANGO_SECRET_KEY": "q9V!t2#Lm8@wZ4$kR7^pX1&nB6*cJ3(eH5)yF0_dG-sA+uK=iO", "DJANGO_HSTS_PRELOAD": "true"}


def test_the_documented_production_environment_passes_check_deploy(tmp_path):
    """README's production settings: `manage.py check --deploy` has nothing to say, and the
    switch turns on what it names (secure cookies, HSTS, redirect, the proxy's header)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"OPENCVI_DATA_DIR": str(tmp_path / "data"), **PRODUCTION})
    proc = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "System check identified no issues" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert "WARNINGS" not in proc.stdout + proc.stderr
    code = ("import django, json; django.setup(); from django.conf import settings as s; print(json.dumps("
            "[s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0, "
            "list(s.SECURE_PROXY_SSL_HEADER), s.CSRF_TRUSTED_ORIGINS]))")
    got = json.loads(_run(PRODUCTION, tmp_path, code).stdout.strip().splitlines()[-1])
    assert got == [True, True, True, True, ["HTTP_X_FORWARDED_PROTO", "https"], ["https://cvi.example.org"]]


def test_the_production_switch_needs_the_sites_host_names(tmp_path):
    for hosts in (None, "*"):
        env = {k: v for k, v in PRODUCTION.items() if k != "DJANGO_ALLOWED_HOSTS"}
        if hosts:
            env["DJANGO_ALLOWED_HOSTS"] = hosts
        proc = _run(env, tmp_path)
        assert proc.returncode != 0
        assert "DJANGO_ALLOWED_HOSTS: must list this site's host names (not *) when DJANGO_HTTPS is on" in proc.stderr


HOSTS = ("import django, json; django.setup(); from django.conf import settings as s; "
         "print(json.dumps(s.ALLOWED_HOSTS))")


def test_the_site_answers_to_its_own_names_unless_told_more(tmp_path):
    """No wildcard by default: this machine's loopback names and PUBLIC_URL's host; a list given
    replaces them."""
    def hosts(env):
        proc = _run(env, tmp_path, HOSTS)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    assert hosts({}) == ["localhost", "127.0.0.1", "[::1]"]
    assert hosts({"PUBLIC_URL": "https://cvi.example.org"}) == ["localhost", "127.0.0.1", "[::1]", "cvi.example.org"]
    assert hosts({"DJANGO_ALLOWED_HOSTS": "box.lan, 10.0.0.5"}) == ["box.lan", "10.0.0.5"]


def test_serving_other_machines_needs_their_host_names(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_ALLOWED_HOSTS",
                                                             "PUBLIC_URL")}
    env.update({"OPENCVI_DATA_DIR": str(tmp_path / "data"), "LLM_URL": "http://127.0.0.1:9/v1"})
    proc = subprocess.run([sys.executable, "manage.py", "serve", "--host", "0.0.0.0", "--no-worker"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "HOST=0.0.0.0 serves other machines: set DJANGO_ALLOWED_HOSTS" in proc.stderr
