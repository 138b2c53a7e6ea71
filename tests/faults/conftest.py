"""Fixtures of the fault suite: servers it may break (never the shared ones)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest
from servers import OwnRedis, TcpProxy, proxied_url


@pytest.fixture
def pg_proxy(postgres_url: str) -> Iterator[TcpProxy]:
    """A TCP proxy in front of the shared PostgreSQL; ``pg_proxy.url`` connects through it."""
    parts = urlsplit(postgres_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    proxy.url = proxied_url(postgres_url, proxy.port)  # type: ignore[attr-defined]
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    """A private redis-server (no persistence) this test may pause, kill and restart."""
    if shutil.which("redis-server") is None:
        if os.environ.get("AGENTCOST_REQUIRE_SERVICES") == "1":
            pytest.fail("redis-server is not installed but AGENTCOST_REQUIRE_SERVICES=1 (apt-get install redis-server)")
        pytest.skip("redis-server is not installed: the Redis fault tests need their own server")
    server = OwnRedis()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_table(postgres_url: str, tmp_path, monkeypatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh PostgreSQL ledger table (dropped afterwards); its side files go under ``tmp_path``."""
    monkeypatch.setenv("AGENTCOST_LEDGER_DIR", str(tmp_path))
    table = f"agentcost_faults_{uuid.uuid4().hex[:10]}"
    yield table
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_prompts, {table}_hourly, {table}_sessions")
        conn.execute("DELETE FROM agentcost_meta WHERE name = %s", (table,))
