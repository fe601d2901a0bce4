"""A task enqueued through the real Redis broker runs in a real worker process."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_worker(redis_url, tmp_path):
    env = dict(os.environ, REDIS_URL=redis_url, OPENCVI_DATA_DIR=str(tmp_path / "data"))
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "cvi_site", "worker", "--pool", "solo", "--loglevel", "info",
         "--hostname", f"test-{os.getpid()}@localhost", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_task_runs_in_a_real_worker(redis_url, redis_worker):
    app = Celery("probe", broker=redis_url, backend=redis_url)
    result = app.send_task("cvi_site.ping", kwargs={"value": "through-redis"})
    try:
        value = result.get(timeout=90)
    except Exception:
        redis_worker.terminate()
        out = redis_worker.communicate(timeout=20)[0]
        raise AssertionError(f"worker did not answer; its output:\n{out[-4000:]}")
    assert value["value"] == "through-redis"
    assert value["worker_pid"] == redis_worker.pid
    assert value["worker_pid"] != os.getpid()
