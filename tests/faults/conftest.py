"""Fixtures of the fault suite: servers it may break (never the shared ones)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

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
