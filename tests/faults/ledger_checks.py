"""Checks the ledger fault tests share: polling with a deadline, and what a PostgreSQL table holds."""

from __future__ import annotations

import time

import psycopg


def wait_for(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def stored_spans(postgres_url: str, table: str) -> list[str]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(f"SELECT span_id FROM {table}").fetchall()]
