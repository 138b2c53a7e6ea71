"""Real budget stores for the behaviour tests: one of each backend, cleaned up afterwards, and a
second store object on the same data (what another process would open)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from agentcost_core.budgets.stores import MemoryStore
from agentcost_core.budgets.stores.postgres import PostgresStore
from agentcost_core.budgets.stores.redis import RedisStore
from agentcost_core.budgets.stores.sqlite import SQLiteStore

services = pytest.mark.services
ALL = ["memory", "sqlite", pytest.param("redis", marks=services), pytest.param("postgres", marks=services)]
SHARED = ["sqlite", pytest.param("redis", marks=services), pytest.param("postgres", marks=services)]
CLASSES = {"memory": MemoryStore, "sqlite": SQLiteStore, "redis": RedisStore, "postgres": PostgresStore}


def spec_for(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """(args, kwargs) that open a store of ``kind`` on fresh data."""
    unique = uuid.uuid4().hex[:12]
    if kind == "memory":
        return (), {}
    if kind == "sqlite":
        return (f"sqlite:///{tmp_path}/budgets.db",), {}
    if kind == "redis":
        return (request.getfixturevalue("redis_url"),), {"prefix": f"agentcost-test:{unique}:"}
    if kind == "postgres":
        return (request.getfixturevalue("postgres_url"),), {"table": f"agentcost_test_budget_{unique}"}
    raise AssertionError(kind)


def cleanup(kind: str, store: Any, args: tuple[Any, ...]) -> None:
    if kind == "redis":
        store.reset()
    elif kind == "postgres":
        import psycopg

        with psycopg.connect(args[0], autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {store.table}, {store.table}_holds")
    store.close()


@contextmanager
def opened(kind: str, request: pytest.FixtureRequest, tmp_path: Any, cls: type | None = None) -> Iterator[Any]:
    """A store of ``kind`` (built with ``cls``, a subclass, when given), and a function that opens
    another store object on the same data."""
    args, kwargs = spec_for(kind, request, tmp_path)
    store = (cls or CLASSES[kind])(*args, **kwargs)
    others: list[Any] = []

    def another() -> Any:
        if kind == "memory":
            raise AssertionError("the in-process store has no second view")
        other = CLASSES[kind](*args, **kwargs)
        others.append(other)
        return other

    try:
        yield store, another
    finally:
        for other in others:
            other.close()
        cleanup(kind, store, args)


def gated(kind: str) -> type:
    """The real store class of ``kind`` whose ``reserve`` / ``settle`` wait at a gate (the store I/O
    is in flight), and which signals when a release or settle has finished."""
    base = CLASSES[kind]

    class Gated(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.entered = threading.Event()  # a worker is inside reserve / settle
            self.gate = threading.Event()  # lets it through
            self.gated = {"reserve"}
            self.released = threading.Event()
            self.settled = threading.Event()

        def _wait(self, what: str) -> None:
            if what in self.gated:
                self.entered.set()
                assert self.gate.wait(30), "the test never opened the gate"

        def reserve(self, claims: Any, now: Any, *rest: Any) -> Any:
            self._wait("reserve")
            return super().reserve(claims, now, *rest)

        def settle(self, claims: Any, actual: Any, *rest: Any) -> Any:
            if any(actual):
                self._wait("settle")
            try:
                return super().settle(claims, actual, *rest)
            finally:
                (self.settled if any(actual) else self.released).set()

        def release(self, claims: Any, *rest: Any) -> Any:
            try:
                return super().release(claims, *rest)
            finally:
                self.released.set()

    Gated.__name__ = f"Gated{base.__name__}"
    return Gated
