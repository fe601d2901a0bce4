"""Shared fixtures: accounts and keys, and the real services (Redis, PostgreSQL).

Under CI=true a missing service fails the test that needs it; elsewhere it is skipped.
"""
from __future__ import annotations

import os

import pytest

TEST_REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_service(name: str, problem: str) -> None:
    message = f"{name} is not available: {problem}"
    if IN_CI:
        pytest.fail(message + " (CI=true: services must be running)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        require_service("Redis", f"{TEST_REDIS_URL}: {exc}")
    return TEST_REDIS_URL


TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL") or "postgres://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def postgres_database():
    """A fresh PostgreSQL database of the test's own (for deployments of several processes),
    dropped afterwards; yields its URL."""
    import uuid

    import psycopg

    name = f"opencvi_t_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(TEST_POSTGRES_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:  # noqa: BLE001
        require_service("PostgreSQL", f"{TEST_POSTGRES_URL}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield TEST_POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", autouse=True)
def _fresh_redis_db():
    """The suite owns its Redis database (index 15 by default): start it empty."""
    import redis

    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1).flushdb()
    except Exception:  # noqa: BLE001 - tests that need Redis report it themselves
        pass


@pytest.fixture(autouse=True)
def _stock_data(request):
    """Transactional tests empty the database after themselves, taking the migration's stock
    rows with them: put them back for every test that uses the database."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None and not {"db", "transactional_db"} & set(request.fixturenames):
        return
    request.getfixturevalue("transactional_db" if marker and marker.kwargs.get("transaction") else "db")
    from pals.services import pal_stock_ensure

    pal_stock_ensure()


@pytest.fixture
def account(db):
    from cvi_site.services import account_create

    return account_create(username="alice", password="correct-horse-battery")


@pytest.fixture
def other_account(db):
    from cvi_site.services import account_create

    return account_create(username="mallory", password="correct-horse-battery")


@pytest.fixture
def api_key(account) -> str:
    from cvi_site.services import api_key_create

    return api_key_create(account=account, name="test").raw_key


@pytest.fixture
def other_api_key(other_account) -> str:
    from cvi_site.services import api_key_create

    return api_key_create(account=other_account, name="test").raw_key


@pytest.fixture
def api(api_key):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=api_key)
    return client


@pytest.fixture
def other_api(other_api_key):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=other_api_key)
    return client
