"""``Ledger.prune`` on a PostgreSQL ledger: the same retention as on SQLite (tests/ledger_prune_checks.py)."""

from __future__ import annotations

import uuid

import ledger_prune_checks as checks
import pytest

from agentcost_core import Ledger
from agentcost_core.ledger.postgres import PostgresBackend

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.services


def test_prune_on_postgres_deletes_what_is_older_and_keeps_the_report_of_the_rest(postgres_url, tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTCOST_LEDGER_DIR", str(tmp_path))
    table = f"agentcost_prune_{uuid.uuid4().hex[:10]}"
    try:
        with Ledger(backend=PostgresBackend(postgres_url, table=table), sync=True) as ledger:
            kept = checks.check_prune(ledger)
        with Ledger(backend=PostgresBackend(postgres_url, table=table), sync=True) as reopened:
            assert reopened.count() == kept  # the retention holds for the next process too
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_prompts, {table}_hourly, {table}_sessions")
            conn.execute("DELETE FROM agentcost_meta WHERE name = %s", (table,))
