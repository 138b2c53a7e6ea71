"""``agentcost report`` and ``agentcost prices`` end to end on a real SQLite ledger."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from agentcost_core import CostEvent, Ledger, Usage
from agentcost_core.cli import main, parse_when


@pytest.fixture
def ledger_url(tmp_path):
    url = f"sqlite:///{tmp_path}/l.db"
    lg = Ledger(url, sync=True)
    now = time.time()
    rows = [
        ("support", "gpt-4o-mini", Decimal("0.001"), "s1", now - 100),
        ("support", "gpt-4o-mini", Decimal("0.003"), "s1", now - 90),
        ("search", "claude-sonnet-4-5", Decimal("0.02"), "s2", now - 80),
        ("search", "house-model", None, "s2", now - 70),
        ("old", "gpt-4o", Decimal("5"), "s3", now - 40 * 86400),
    ]
    for feature, model, cost, session, ts in rows:
        lg.record(CostEvent(model=model, usage=Usage(input=100, output=10), cost=cost, priced=cost is not None,
                            feature=feature, session_id=session, ts=ts))  # fmt: skip
    lg.close()
    return url


def test_report_json_by_feature_with_since(ledger_url, capsys):
    assert main(["report", "--ledger", ledger_url, "--since", "7d", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["key"][0]: r for r in data["rows"]}
    assert set(rows) == {"support", "search"}  # "old" is outside the window
    assert Decimal(rows["support"]["cost"]) == Decimal("0.004")
    assert rows["search"]["unpriced_calls"] == 1 and rows["search"]["unpriced_models"] == ["house-model"]
    assert Decimal(data["total"]["cost"]) == Decimal("0.024")
    assert data["total"]["per_session"]["p50"] is not None
    assert Decimal(data["projected_monthly"]) > 0


def test_report_csv_and_top(ledger_url, capsys):
    assert main(["report", "--ledger", ledger_url, "--by", "model", "--top", "1", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["model"] for r in rows] == ["gpt-4o", "total"]
    assert Decimal(rows[-1]["cost"]) == Decimal("5.024")


def test_report_table_shows_unpriced_and_groups(ledger_url, capsys):
    assert main(["report", "--ledger", ledger_url, "--by", "feature,model"]) == 0
    out = capsys.readouterr().out
    assert "support / gpt-4o-mini" in out and "UNPRICED" in out and "house-model" in out
    assert "projected monthly" in out


def test_report_shows_cache_read_share_per_feature(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/c.db"
    lg = Ledger(url, sync=True)
    lg.record(CostEvent(model="claude-sonnet-4-5", usage=Usage(input=100, cache_read=900, output=10),
                        cost=Decimal("0.0006"), priced=True, feature="support"))  # fmt: skip
    lg.record(CostEvent(model="gpt-4o", usage=Usage(input=100, output=10), cost=Decimal("0.0004"), priced=True,
                        feature="search"))  # fmt: skip
    lg.close()
    assert main(["report", "--ledger", url, "--format", "csv"]) == 0
    rows = {r["feature"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert rows["support"]["cache_read_pct"] == "90.00" and rows["search"]["cache_read_pct"] == "0.00"
    assert rows["total"]["cache_read_pct"] == "81.82"  # 900 / 1100
    assert Decimal(rows["support"]["prompt_cache_savings"]) == 900 * (Decimal("3.00") - Decimal("0.30")) / 10**6
    assert main(["report", "--ledger", url]) == 0
    out = capsys.readouterr().out
    assert "cache read %" in out and "90.0%" in out and "81.8%" in out
    assert "prompt-cache reads (81.8% of prompt tokens) saved $0.0024" in out
    assert main(["report", "--ledger", url, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["key"][0]: r["cache_read_share"] for r in data["rows"]} == {"support": "0.9000", "search": "0.0000"}


def test_report_where_filter(ledger_url, capsys):
    assert main(["report", "--ledger", ledger_url, "--where", "feature=search", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["key"] for r in data["rows"]] == [["search"]]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["report", "--ledger", "nope://x"], "unknown ledger scheme"),
        (["report", "--ledger", "memory://", "--since", "last tuesday"], "cannot read time"),
        (["report", "--ledger", "memory://", "--by", "colour"], "cannot group by"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_parse_when():
    assert parse_when("2h", now=10_000.0) == 10_000.0 - 7200
    assert parse_when("2026-11-01") == 1793491200.0


def test_prices_lookup_and_json(capsys):
    assert main(["prices", "anthropic.claude-sonnet-4-5-20250929-v1:0", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    entry = data["anthropic.claude-sonnet-4-5-20250929-v1:0"]
    assert entry["model"] == "claude-sonnet-4-5" and entry["input"] == "3.00"
    assert entry["long_context"]["threshold"] == 200000
    assert main(["prices", "no-such-model"]) == 1
    assert "not in the catalog" in capsys.readouterr().err


def test_console_script_is_installed(ledger_url):
    out = subprocess.run(
        [sys.executable, "-m", "agentcost_core.cli", "prices", "--provider", "anthropic"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert "claude-sonnet-4-5" in out.stdout and "gpt-4o" not in out.stdout


def test_report_accepts_short_group_names(tmp_path, capsys):  # type: ignore[no-untyped-def]
    from agentcost_core import CostEvent, Ledger, Usage
    from agentcost_core.cli import main

    url = f"sqlite:///{tmp_path}/l.db"
    lg = Ledger(url, sync=True)
    lg.record(CostEvent("gpt-4o", Usage(input=10, output=5), session_id="s-9", user_id="u-3"))
    assert main(["report", "--ledger", url, "--by", "session,user", "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert '"session_id"' in out and "s-9" in out and "u-3" in out
