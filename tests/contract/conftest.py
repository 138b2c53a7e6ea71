"""The contract suite: a parametrized ``adapter`` fixture (ids "langchain", "llamaindex") whose
drivers (``contract_drivers.py``) drive each adapter's real path through the same small interface."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contract_drivers import DRIVERS  # noqa: E402


@pytest.fixture(params=list(DRIVERS), ids=list(DRIVERS))
def adapter(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield DRIVERS[request.param]()


@pytest.fixture
def both() -> dict[str, Any]:
    """Both drivers, for tests that compare the adapters' outcomes with each other."""
    return {name: cls() for name, cls in DRIVERS.items()}


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def budget_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A budget counter store of each kind (the real services for Redis and PostgreSQL)."""
    import uuid

    from agentcost_core.budgets.stores.memory import MemoryStore
    from agentcost_core.budgets.stores.postgres import PostgresStore
    from agentcost_core.budgets.stores.redis import RedisStore
    from agentcost_core.budgets.stores.sqlite import SQLiteStore

    unique = uuid.uuid4().hex[:12]
    kind = request.param
    if kind == "memory":
        store: Any = MemoryStore()
    elif kind == "sqlite":
        store = SQLiteStore(f"sqlite:///{tmp_path}/budgets.db")
    elif kind == "redis":
        store = RedisStore(request.getfixturevalue("redis_url"), prefix=f"agentcost-contract:{unique}:")
    else:
        store = PostgresStore(request.getfixturevalue("postgres_url"), table=f"agentcost_contract_{unique}")
    try:
        yield store
    finally:
        if kind == "redis":
            store.reset()
        store.close()
        if kind == "postgres":
            import psycopg

            with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as conn:
                conn.execute(f"DROP TABLE IF EXISTS agentcost_contract_{unique}, agentcost_contract_{unique}_holds")
