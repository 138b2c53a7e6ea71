"""Every priced event records which price data priced it, and ledgers of the previous layout are
migrated on open (SQLite and PostgreSQL) to carry that column."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime

import pytest
from test_ledger_schema_versions import V1_DDL, V1_INSERT, V1_ROWS

from agentcost_core import CostEvent, Ledger, PriceCatalog, Usage
from agentcost_core.accountant import Accountant
from agentcost_core.call import ModelCall, Outcome
from agentcost_core.prices.genai import genai_version


def _event(model: str, catalog: PriceCatalog | None = None) -> CostEvent:
    acc = Accountant(catalog)
    event, _ = acc.event(ModelCall(model=model), Outcome(usage=Usage(input=1000, output=100)))
    return event


def test_an_event_records_the_price_data_that_priced_it() -> None:
    assert _event("gpt-4o").price_source == f"genai-prices {genai_version()}"
    assert _event("claude-3-5-sonnet-20241022").price_source.endswith("+ overlay 2026-11-23")  # batch tier added
    house = PriceCatalog.default().merged({"house-1": {"input": "1", "output": "2"}})
    assert _event("house-1", house).price_source == "user"
    lite = PriceCatalog.from_litellm({"lite-1": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}})
    assert _event("lite-1", lite).price_source == "litellm"
    assert _event("no-such-model-anywhere").price_source is None  # unpriced


def test_the_price_that_applied_at_the_time_of_the_call() -> None:
    catalog = PriceCatalog.default()
    before = datetime(2026, 11, 15, tzinfo=UTC).timestamp()
    after = datetime(2026, 12, 2, tzinfo=UTC).timestamp()
    # genai-prices dates Google's doubling of gemini-4-argon on 2026-12-01
    assert catalog.at("gemini-4-argon", before).base.input * 2 == catalog.at("gemini-4-argon", after).base.input
    assert catalog.at("gemini-4-argon", after) == catalog.get("gemini-4-argon")


def test_a_version_1_sqlite_ledger_gains_the_price_source_column(tmp_path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    for ddl in V1_DDL:
        conn.execute(ddl)
    conn.executemany(V1_INSERT, V1_ROWS)
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Ledger(f"sqlite:///{path}", sync=True) as ledger:
        old = ledger.events()
        assert [e.id for e in old] == ["old-1", "old-2"] and all(e.price_source is None for e in old)
        ledger.record(_event("gpt-4o"))
        assert ledger.events()[-1].price_source == f"genai-prices {genai_version()}"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 5  # and on to prompts (3), money columns (4) and rollup tables (5)
    conn.close()


def test_a_version_1_postgres_ledger_gains_the_price_source_column(postgres_url) -> None:
    import psycopg

    from agentcost_core.ledger.postgres import PostgresBackend

    table = f"agentcost_v1_{uuid.uuid4().hex[:8]}"
    ddl = (
        V1_DDL[0]
        .replace("events (seq INTEGER PRIMARY KEY", f"{table} (seq BIGSERIAL PRIMARY KEY")
        .replace(" REAL", " DOUBLE PRECISION")
    )
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(ddl)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS agentcost_meta (name TEXT PRIMARY KEY, schema_version INTEGER NOT NULL)"
        )
        conn.execute("INSERT INTO agentcost_meta VALUES (%s, 1)", (table,))
        conn.cursor().executemany(V1_INSERT.replace("events", table).replace("?", "%s"), V1_ROWS)
    try:
        backend = PostgresBackend(postgres_url, table=table)  # opening migrates
        try:
            assert [e.price_source for e in backend.query()] == [None, None]
            backend.write_many([_event("gpt-4o")])
            assert [e.price_source for e in backend.query()][-1] == f"genai-prices {genai_version()}"
        finally:
            backend.close()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            row = conn.execute("SELECT schema_version FROM agentcost_meta WHERE name = %s", (table,)).fetchone()
            assert row[0] == 5
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_prompts, {table}_hourly, {table}_sessions")
            conn.execute("DELETE FROM agentcost_meta WHERE name = %s", (table,))


@pytest.mark.parametrize("model", ["gpt-4o"])
def test_a_re_read_event_keeps_its_price_source(tmp_path, model: str) -> None:
    with Ledger(f"sqlite:///{tmp_path}/l.db", sync=True) as ledger:
        ledger.record(_event(model))
        assert ledger.events()[0].as_dict()["price_source"] == f"genai-prices {genai_version()}"


def test_a_dated_change_while_running_prices_later_calls_at_the_new_price() -> None:
    """A catalog resolved before a dated change (gemini-4-argon doubled on 2026-12-01) prices a call
    made after it at the new price: the accountant sees the price's end and asks for the current one."""
    catalog = PriceCatalog.default()
    before = datetime(2026, 11, 15, tzinfo=UTC).timestamp()
    old = catalog.at("gemini-4-argon", before)
    assert old.until == datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    stale = PriceCatalog([old.with_model("gemini-4-argon").with_origin(old.origin, old.until)], base=catalog.base)
    event = _event("gemini-4-argon", stale)
    assert event.cost == catalog.get("gemini-4-argon").cost(Usage(input=1000, output=100))
    assert event.cost == 2 * old.cost(Usage(input=1000, output=100))
