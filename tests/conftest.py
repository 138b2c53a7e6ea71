"""Shared test setup: offline tiktoken, and the real services some tests need."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

_CACHE = Path(__file__).resolve().parents[2] / "shared" / "tiktoken-cache"
if "TIKTOKEN_CACHE_DIR" not in os.environ and _CACHE.is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_CACHE)


def _service(env: str, what: str, probe) -> str:  # type: ignore[no-untyped-def]
    """The service's URL, or a skip with the reason (a failure under AGENTCOST_REQUIRE_SERVICES=1)."""
    required = os.environ.get("AGENTCOST_REQUIRE_SERVICES") == "1"
    url = os.environ.get(env)
    if not url:
        if required:
            pytest.fail(f"{env} is not set but AGENTCOST_REQUIRE_SERVICES=1: {what} is required")
        pytest.skip(f"{what} not configured: set {env} to run this test")
    try:
        probe(url)
    except Exception as e:  # pragma: no cover - depends on the machine
        if required:
            pytest.fail(f"{what} at {url} is required but unreachable: {e}")
        pytest.skip(f"{what} at {url} unreachable: {e}")
    return url


def _ping_postgres(url: str) -> None:
    import psycopg

    psycopg.connect(url, connect_timeout=5).close()


def _ping_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url, socket_connect_timeout=5).ping()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return _service("AGENTCOST_POSTGRES_URL", "PostgreSQL", _ping_postgres)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _service("AGENTCOST_REDIS_URL", "Redis", _ping_redis)


@pytest.fixture
def redis_cache_store(redis_url: str) -> Iterator[str]:
    """A Redis response-cache store URL under a namespace of its own (its entries dropped after)."""
    import uuid

    sep = "&" if "?" in redis_url else "?"
    namespace = uuid.uuid4().hex
    url = f"{redis_url}{sep}namespace=agentcost-test:{namespace}"
    yield url
    import redis

    client = redis.Redis.from_url(redis_url)  # every key of the namespace: entries, counters, flights
    names = list(client.scan_iter(match=f"agentcost-test:{namespace}*", count=1000))
    if names:
        client.delete(*names)
    client.close()


@pytest.fixture
def pg_table(postgres_url: str, tmp_path, monkeypatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh PostgreSQL ledger table name (the table, its prompts, rollup tables and trigger function
    dropped afterwards); the ledger's side files go under ``tmp_path``."""
    import uuid

    import psycopg

    monkeypatch.setenv("AGENTCOST_LEDGER_DIR", str(tmp_path))
    table = f"agentcost_t_{uuid.uuid4().hex[:10]}"
    yield table
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_prompts, {table}_hourly, {table}_sessions")
        conn.execute(f"DROP FUNCTION IF EXISTS {table}_rollups()")
        conn.execute("DELETE FROM agentcost_meta WHERE name = %s", (table,))


# Shared helper modules (ledger_contract.py) live beside this file.
import sys as _sys  # noqa: E402

_sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def budget_store(request: pytest.FixtureRequest, tmp_path) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A budget counter store of each kind (the real services for Redis and PostgreSQL)."""
    import uuid

    from agentcost_core.budgets.stores.memory import MemoryStore
    from agentcost_core.budgets.stores.postgres import PostgresStore
    from agentcost_core.budgets.stores.redis import RedisStore
    from agentcost_core.budgets.stores.sqlite import SQLiteStore

    unique = uuid.uuid4().hex[:12]
    kind = request.param
    if kind == "memory":
        store: object = MemoryStore()
    elif kind == "sqlite":
        store = SQLiteStore(f"sqlite:///{tmp_path}/budgets.db")
    elif kind == "redis":
        store = RedisStore(request.getfixturevalue("redis_url"), prefix=f"agentcost-test:{unique}:")
    else:
        store = PostgresStore(request.getfixturevalue("postgres_url"), table=f"agentcost_test_{unique}")
    try:
        yield store
    finally:
        if kind == "redis":
            store.reset()  # type: ignore[attr-defined]
        store.close()  # type: ignore[attr-defined]
        if kind == "postgres":
            import psycopg

            with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as conn:
                conn.execute(f"DROP TABLE IF EXISTS agentcost_test_{unique}, agentcost_test_{unique}_holds")
