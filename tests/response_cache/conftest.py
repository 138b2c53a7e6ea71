"""Stores of every kind for the response-cache tests (the real Redis service for ``redis``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A cache store URL of each kind; Redis entries live under a namespace of their own, dropped after."""
    kind = request.param
    if kind == "memory":
        yield "memory://"
    elif kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'cache.db'}"
    else:
        url = request.getfixturevalue("redis_url")
        sep = "&" if "?" in url else "?"
        namespace = f"agentcost-test:{uuid.uuid4().hex}"
        yield f"{url}{sep}namespace={namespace}"
        client = redis.Redis.from_url(url)  # every key of the namespace, its counters too (clear() keeps those)
        names = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        if names:
            client.delete(*names)
        client.close()
