"""``agentcost report`` and ``agentcost prices`` end to end on a real SQLite ledger."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

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


def test_report_table_shows_unpriced_and_groups(ledger_url, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    assert main(["report", "--ledger", ledger_url, "--by", "feature,model"]) == 0
    out = capsys.readouterr().out
    assert "support / gpt-4o-mini" in out and "UNPRICED" in out and "house-model" in out
    assert "projected monthly" in out


def test_report_shows_cache_read_share_per_feature(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # wide enough for every column
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
    assert "read %" in out and "90.0%" in out and "81.8%" in out
    assert "prompt-cache reads (81.8% of prompt tokens) saved $0.00243" in out  # exact: 900 x $2.70 / 1M
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
        (["report", "--where", "nonsense=1"], "cannot filter on 'nonsense'"),
        (["report", "--where", "feature"], "--where takes field=value"),
        (["report", "--by", "colour"], "cannot group by 'colour'"),
        (["report", "--since", "last tuesday"], "cannot read time 'last tuesday'"),
        (["report", "--until", "soon"], "cannot read time 'soon'"),
        (["report", "--since", "1d", "--until", "2d"], "is not after --since"),
        (["report", "--format", "xml"], "invalid choice: 'xml'"),
        (["report", "--top", "0"], "--top: must be a positive whole number"),
        (["report", "--top", "ten"], "--top: must be a positive whole number, got 'ten'"),
        (["report", "--colour"], "unrecognized arguments: --colour"),
        (["report", "--ledger", "nope://x"], "unknown ledger scheme"),
        (["report", "--ledger", "ledger.db"], "has no scheme"),
        (["report", "--where", "feature=support", "--where", "feature=search"], "--where feature given twice"),
        ([], "the following arguments are required"),
    ],
)
def test_every_bad_report_argument_is_one_line_on_stderr_and_exit_2(argv, message, ledger_url, capsys):
    if "--ledger" not in argv and argv:
        argv = [*argv, "--ledger", ledger_url]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("agentcost: ") and message in lines[0], captured.err
    assert "Traceback" not in captured.err


def test_a_missing_ledger_file_is_reported_not_created(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTCOST_LEDGER", raising=False)
    assert main(["report"]) == 2  # the default ledger, .agentcost/ledger.db, does not exist here
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "no ledger file at .agentcost/ledger.db" in err[0]
    assert main(["report", "--ledger", f"sqlite:///{tmp_path}/missing.db"]) == 2
    assert f"no ledger file at {tmp_path}/missing.db" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # reading a report created nothing


def test_an_unreadable_ledger_is_one_line_and_exit_1(tmp_path, capsys):
    (tmp_path / "notes.db").write_text("not a database")
    assert main(["report", "--ledger", f"sqlite:///{tmp_path}/notes.db"]) != 0
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("agentcost: ") and "Traceback" not in err


def test_the_installed_console_script_prints_one_line_for_a_bad_filter(ledger_url, tmp_path):
    script = Path(sys.executable).with_name("agentcost")
    argv = [str(script)] if script.is_file() else [sys.executable, "-m", "agentcost_core.cli"]
    out = subprocess.run([*argv, "report", "--ledger", ledger_url, "--where", "nonsense=1"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == [
        "agentcost: cannot filter on 'nonsense' in --where; choose from agent_id, feature, framework, kind, model, "
        "provider, requested_model, service_tier, session_id, step, task_id, tier, trace_id, user_id"
    ]


def test_parse_when():
    assert parse_when("2h", now=10_000.0) == 10_000.0 - 7200
    assert parse_when("2026-11-01") == 1793491200.0


def test_prices_lookup_and_json(capsys):
    assert main(["prices", "anthropic.claude-sonnet-4-5-20250929-v1:0", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    entry = data["anthropic.claude-sonnet-4-5-20250929-v1:0"]
    # An in-region Bedrock id: AWS's regional price (Anthropic's + 10% since Sonnet 4.5), from genai-prices.
    assert entry["model"] == "regional.anthropic.claude-sonnet-4-5-20250929-v1:0" and entry["input"] == "3.3"
    assert entry["provider"] == "aws" and entry["long_context"]["threshold"] == 200000
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


@pytest.fixture
def awkward_ledger(tmp_path):
    """Long labels and costs with many digits: the kind of report that used to be cut ("$0.0279…")."""
    url = f"sqlite:///{tmp_path}/awkward.db"
    lg = Ledger(url, sync=True)
    now = time.time()
    costs = [Decimal("0.0279123456"), Decimal("12345.678912345"), Decimal("0.00000125"), Decimal("3.5")]
    for i, cost in enumerate(costs):
        for j in range(2):
            lg.record(CostEvent(model=f"claude-sonnet-4-5-20250929-variant-{i}", cost=cost * (j + 1), priced=True,
                                usage=Usage(input=1_234_567 * (i + 1), cache_read=98_765, cache_write_5m=4_321,
                                            output=87_654, reasoning=1_000),
                                feature=f"customer-support-escalations-tier-{i}", session_id=f"session-{i}-{j}",
                                ts=now - 3600 * (i + j)))  # fmt: skip
    lg.close()
    return url


@pytest.mark.parametrize("width", [80, 120])
def test_report_table_fits_the_terminal_and_prints_every_cost_whole(awkward_ledger, width, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(width))
    assert main(["report", "--ledger", awkward_ledger, "--by", "feature,model"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= width
    assert "…" not in out
    r = Ledger(awkward_ledger).rollup(by=("feature", "model"))
    exact = {r.total.prompt_cache_savings}
    for row in [*r.rows, r.total]:
        exact |= {row.cost, row.cache_savings + row.prompt_cache_savings, *row.per_call.values(),
                  *row.per_session.values()}  # fmt: skip
    costs = "\n".join(line for line in out.splitlines() if "projected monthly" not in line)  # a rate, not a cost
    printed = [Decimal(m.replace(",", "")) for m in re.findall(r"\$([\d,]+\.\d+)", costs)]
    assert printed and all(p in exact for p in printed), sorted(set(printed) - exact)
    assert {row.cost for row in [*r.rows, r.total]} <= set(printed)  # the cost column is always there, whole


def test_a_narrow_table_says_which_columns_it_left_out(awkward_ledger, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["report", "--ledger", awkward_ledger, "--by", "feature,model"]) == 0
    narrow = capsys.readouterr().out
    assert "not shown at 80 columns:" in narrow and "p99/call" in narrow
    monkeypatch.setenv("COLUMNS", "260")
    assert main(["report", "--ledger", awkward_ledger, "--by", "feature,model"]) == 0
    wide = capsys.readouterr().out
    assert "not shown" not in wide and "p99/call" in wide and "reasoning" in wide


@pytest.fixture
def ledger_with_guard_events(tmp_path):
    url = f"sqlite:///{tmp_path}/guards.db"
    lg = Ledger(url, sync=True)
    lg.record(CostEvent(model="gpt-4o-mini", usage=Usage(input=100, output=10), cost=Decimal("0.00002"),
                        priced=True, feature="support"))  # fmt: skip
    notices = [
        ("budget.warning", {"budget": "session-cap", "level": "warning"}),
        ("budget.warning", {"budget": "daily-spend", "level": "warning"}),
        ("budget.exceeded", {"budget": "session-cap", "level": "exceeded"}),
        ("budget.exceeded", {"budget": "session-cap", "level": "exceeded"}),
        ("halt", {"reason": "budget"}),
        ("guard.nudge", {"reason": "repeated_tool"}),
        ("guard.circuit_open", {"tool": "search_tickets"}),
    ]
    for kind, extra in notices:
        lg.record(CostEvent(None, kind=kind, feature="support", extra=extra))
    lg.close()
    return url


def test_table_report_lists_budget_warnings_and_halts_per_kind_and_budget(ledger_with_guard_events, capsys):
    assert main(["report", "--ledger", ledger_with_guard_events]) == 0
    out = capsys.readouterr().out
    section = out[out.index("budget warnings and halts"):]
    rows = {tuple(cell.strip() for cell in line.strip("│ ").split("│")) for line in section.splitlines() if "│" in line}
    assert rows == {
        ("budget.warning", "daily-spend", "1"),
        ("budget.warning", "session-cap", "1"),
        ("budget.exceeded", "session-cap", "2"),
        ("halt", "budget", "1"),
        ("guard.nudge", "repeated_tool", "1"),
        ("guard.circuit_open", "search_tickets", "1"),
    }
    assert "support" in out and "$0.00002" in out  # the calls' table is still there, with one call
    assert re.search(r"│ total\s+│\s+1 │", out)  # notices are not counted as calls


def test_json_and_csv_reports_carry_budget_warnings_and_halts(ledger_with_guard_events, capsys):
    assert main(["report", "--ledger", ledger_with_guard_events, "--format", "json"]) == 0
    total = json.loads(capsys.readouterr().out)["total"]
    assert total["calls"] == 1
    assert total["notices"] == {"budget.warning": 2, "budget.exceeded": 2, "halt": 1, "guard.nudge": 1,
                                "guard.circuit_open": 1}  # fmt: skip
    assert {"kind": "budget.exceeded", "subject": "session-cap", "count": 2} in total["notice_subjects"]
    assert main(["report", "--ledger", ledger_with_guard_events, "--format", "csv"]) == 0
    rows = {r["feature"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    for feature in ("support", "total"):
        r = rows[feature]
        assert (r["budget_warnings"], r["budget_exceeded"], r["halts"], r["nudges"], r["circuit_opens"]) == (
            "2", "2", "1", "1", "1")


def test_an_unreachable_database_is_a_failure_while_running_exit_1(capsys):
    import socket

    with socket.socket() as s:  # a port nothing listens on: the server is down, the URL is fine
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["report", "--ledger", f"postgresql://postgres@127.0.0.1:{port}/test"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "cannot connect to PostgreSQL ledger" in lines[0]


def test_output_piped_into_a_reader_that_stops_early_ends_quietly(tmp_path):
    """``agentcost prices --format json | head -1`` (about 1 MB, far more than a pipe holds): the
    reader goes away; no BrokenPipeError line."""
    argv = ["prices", "--format", "json"]
    proc = subprocess.Popen([sys.executable, "-m", "agentcost_core.cli", *argv], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()  # the reader takes one line and leaves
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1 and err == ""


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing/x.html", "agentcost: --out {tmp}/missing/x.html: the folder {tmp}/missing does not exist"),
        (".", "agentcost: --out {tmp} is a folder; give a file name, e.g. {tmp}/dashboard.html"),
    ],
)
def test_dashboard_out_in_a_folder_that_does_not_exist_is_a_bad_argument(ledger_url, tmp_path, capsys, where, message):
    out = tmp_path / where if where != "." else tmp_path
    assert main(["dashboard", "--ledger", ledger_url, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.splitlines() == [message.format(tmp=tmp_path)]


def _header_of(out: str) -> str:
    return next(line for line in out.splitlines() if "calls" in line and "cost" in line)


@pytest.mark.parametrize("width", [100, 120, 140])
def test_a_narrow_table_keeps_the_percentiles_before_the_cache_columns_and_shows_them_together(
    awkward_ledger, width, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", str(width))
    assert main(["report", "--ledger", awkward_ledger, "--by", "feature"]) == 0
    header = _header_of(capsys.readouterr().out)
    shown = [h for h in ("p50/call", "p95/call", "input", "output", "cache") if h in header]
    if "cache" in header:  # a cache column is kept only once the first percentiles and tokens are
        assert shown[:4] == ["p50/call", "p95/call", "input", "output"]
    positions = [header.index(h) for h in shown]
    assert positions == sorted(positions)  # the percentiles sit together, before the token columns
