"""A SQLite ledger's rollup runs in SQLite (schema version 4: money in integer columns) and equals the
Python rollup of the same events; a version 3 ledger written by the previous code migrates on open
and reports what it reported before."""

from __future__ import annotations

import json
import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
import rollup_cases as cases

from agentcost_core import CostEvent, Ledger, Usage
from agentcost_core.cli import main
from agentcost_core.ledger.money_columns import from_sums, split, split_text

DATA = Path(__file__).parent.parent / "data"


@pytest.fixture
def varied_ledger(tmp_path):
    events = cases.varied_events()
    ledger = Ledger(f"sqlite:///{tmp_path}/varied.db", sync=True)
    ledger.record_many(events)
    yield ledger, events
    ledger.close()


def test_a_sqlite_rollup_equals_the_python_rollup_for_every_grouping_and_window(varied_ledger):
    ledger, events = varied_ledger
    cases.check_equal_to_python(ledger, events)


def test_filters_apply_in_the_database_as_in_python(varied_ledger):
    ledger, events = varied_ledger
    cases.check_equal_to_python(ledger, events, feature="search")
    cases.check_equal_to_python(ledger, events, user_id="u1", agent_id="a1")


def test_the_rollup_reads_no_event_into_python(varied_ledger, monkeypatch):
    ledger, _ = varied_ledger
    monkeypatch.setattr(type(ledger.backend), "query", lambda *a, **k: pytest.fail("events were loaded"))
    assert ledger.rollup(by="feature").total.calls == 128


def test_money_with_digits_below_the_integer_columns_is_still_summed_exactly(tmp_path):
    tiny = Decimal("0.0000000000000000001234567")  # 10^-25: below the atto-dollar column
    events = [CostEvent(model="m", cost=Decimal("0.5") + tiny, priced=True, feature="f", ts=cases.T0),
              CostEvent(model="m", cost=Decimal("0.25"), priced=True, feature="f", ts=cases.T0 + 1)]  # fmt: skip
    with Ledger(f"sqlite:///{tmp_path}/tiny.db", sync=True) as ledger:
        ledger.record_many(events)
        r = ledger.rollup(by="feature")
        assert r.total.cost == Decimal("0.75") + tiny and str(r.rows[0].cost) == "0.7500000000000000001234567"
        assert r.total.per_call["p99"] == Decimal("0.5") + tiny


@pytest.mark.parametrize(
    "value", ["0", "0.000", "0.00575", "12.5", "0.000000000123456789", "1E+2", "0.0000000000000000001234567"]
)
def test_money_columns_rebuild_the_value_and_its_digits(value):
    d = Decimal(value)
    nanos, attos, exp, rem = split(d)
    rebuilt = from_sums(nanos, attos, exp) + (Decimal(rem) if rem else 0)
    assert rebuilt == d and (rem is not None) == (value == "0.0000000000000000001234567")
    assert str(from_sums(nanos, attos, exp)) == str(Decimal(0) + d) or rem  # Python's sum from 0 has these digits
    assert split_text(str(d)) == (nanos, attos, exp, rem)  # the writer's fast path agrees


def test_a_version_3_ledger_migrates_on_open_and_reports_what_it_reported_before(tmp_path, capsys):
    """tests/data/ledger_v3.db was written by the schema version 3 code (main at 6fb20ce), and the two
    ledger_v3_report_*.json files are that code's `agentcost report --format json` of it."""
    path = tmp_path / "v3.db"
    shutil.copy(DATA / "ledger_v3.db", path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    conn.close()
    for by, name in (("feature", "feature"), ("model,day", "model_day")):
        assert main(["report", "--ledger", f"sqlite:///{path}", "--by", by, "--format", "json"]) == 0
        got = json.loads(capsys.readouterr().out)
        want = json.loads((DATA / f"ledger_v3_report_{name}.json").read_text())
        for d in (got, want):
            d.pop("window_s", None)
            d.pop("projected_monthly", None)
            for row in [*d["rows"], d["total"]]:  # computed from prices: compared by value (digits may differ)
                for k in ("prompt_cache_savings", "routing_savings"):
                    row[k] = Decimal(row[k])
        assert got == want
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
    filled = conn.execute("SELECT COUNT(*) FROM events WHERE cost IS NOT NULL AND cost_nanos IS NOT NULL").fetchone()
    tops = conn.execute("SELECT top_model FROM events WHERE top_model IS NOT NULL").fetchall()
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    conn.close()
    assert filled[0] == 42 and tops == [("gpt-4o",)]
    assert {"events_feature", "events_session_id", "events_call_cost"} <= indexes  # the report's indexes
    with Ledger(f"sqlite:///{path}", sync=True) as ledger:  # old and new rows sum together
        before = ledger.rollup(by="feature").total.cost
        ledger.record(CostEvent(model="gpt-4o", usage=Usage(input=1), cost=Decimal("0.0000025"), priced=True))
        assert ledger.rollup(by="feature").total.cost == before + Decimal("0.0000025")
