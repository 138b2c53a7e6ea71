"""Fixtures for the LlamaIndex adapter tests: a handler on the root dispatcher, always detached."""

from __future__ import annotations

from typing import Iterator

import pytest

pytest.importorskip("llama_index.core")

from agentcost_llamaindex import CostEventHandler, instrument  # noqa: E402


@pytest.fixture
def handler() -> Iterator[CostEventHandler]:
    """An instrumented root dispatcher recording into an in-memory ledger."""
    h = instrument("memory://")
    try:
        yield h
    finally:
        h.detach()
        assert h.dispatcher is None


@pytest.fixture(autouse=True)
def _no_handler_left_behind() -> Iterator[None]:
    """Every test leaves the process-wide root dispatcher as it found it."""
    from llama_index.core.instrumentation import get_dispatcher

    d = get_dispatcher()
    before = (list(d.event_handlers), list(d.span_handlers))
    yield
    leftovers = [h for h in d.event_handlers if isinstance(h, CostEventHandler) and all(h is not b for b in before[0])]
    for h in leftovers:
        h.detach()
    assert not leftovers, "a test left a CostEventHandler attached to the root dispatcher"


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
        store = RedisStore(request.getfixturevalue("redis_url"), prefix=f"agentcost-li-test:{unique}:")
    else:
        store = PostgresStore(request.getfixturevalue("postgres_url"), table=f"agentcost_li_test_{unique}")
    try:
        yield store
    finally:
        if kind == "redis":
            store.reset()  # type: ignore[attr-defined]
        store.close()  # type: ignore[attr-defined]
        if kind == "postgres":
            import psycopg

            with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as conn:
                conn.execute(f"DROP TABLE IF EXISTS agentcost_li_test_{unique}")
