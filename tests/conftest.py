"""Shared test setup: offline tiktoken, and the real services some tests need."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_CACHE = Path(__file__).resolve().parents[2] / "shared" / "tiktoken-cache"
if "TIKTOKEN_CACHE_DIR" not in os.environ and _CACHE.is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_CACHE)


def _service(env: str, what: str) -> str:
    url = os.environ.get(env)
    if not url:
        if os.environ.get("AGENTCOST_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{env} is not set but AGENTCOST_REQUIRE_SERVICES=1: {what} is required")
        pytest.skip(f"{what} not configured: set {env} to run this test")
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = _service("AGENTCOST_POSTGRES_URL", "PostgreSQL")
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=5).close()
    except Exception as e:  # pragma: no cover - depends on the machine
        if os.environ.get("AGENTCOST_REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL at {url} is required but unreachable: {e}")
        pytest.skip(f"PostgreSQL at {url} unreachable: {e}")
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = _service("AGENTCOST_REDIS_URL", "Redis")
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except Exception as e:  # pragma: no cover - depends on the machine
        if os.environ.get("AGENTCOST_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis at {url} is required but unreachable: {e}")
        pytest.skip(f"Redis at {url} unreachable: {e}")
    return url


# Shared helper modules (ledger_contract.py) live beside this file.
import sys as _sys  # noqa: E402

_sys.path.insert(0, str(Path(__file__).resolve().parent))
