"""Stores of every kind for the response-cache tests (the real Redis service for ``redis``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A cache store URL of each kind; Redis entries live under a namespace of their own, dropped after."""
    kind = request.param
    if kind == "memory":
        yield "memory://"
    elif kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'cache.db'}"
    else:
        yield request.getfixturevalue("redis_cache_store")
