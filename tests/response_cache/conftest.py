"""Stores of every kind for the response-cache tests (the real Redis service for ``redis``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from agentcost_core.response_cache import open_cache_backend


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
        full = f"{url}{sep}namespace=agentcost-test:{uuid.uuid4().hex}"
        yield full
        backend = open_cache_backend(full)
        backend.clear()
        backend.close()
