"""``agentcost ledger prune --before DATE`` and ``Ledger.prune`` on SQLite and memory ledgers."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import ledger_prune_checks as checks
import pytest

from agentcost_core import Ledger
from agentcost_core.cli import main


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_prune_deletes_what_is_older_and_keeps_the_report_of_the_rest(kind, tmp_path):
    url = f"sqlite:///{tmp_path}/prune.db" if kind == "sqlite" else "memory://"
    with Ledger(url, sync=True) as ledger:
        checks.check_prune(ledger)


def test_the_prune_command_deletes_before_an_iso_date_and_says_how_many(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/cli.db"
    now = time.time()
    with Ledger(url, sync=True) as ledger:
        ledger.record_many(checks.recorded(now))
    cut = datetime.fromtimestamp(now - 5 * checks.DAY, tz=UTC).date()  # midnight UTC of that day
    assert main(["ledger", "prune", "--before", cut.isoformat(), "--ledger", url, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    midnight = datetime(cut.year, cut.month, cut.day, tzinfo=UTC).timestamp()
    older = sum(1 for e in checks.recorded(now) if e.ts < midnight)
    assert out["pruned"] == older > 0 and out["left"] == 30 - older and out["before"].startswith(cut.isoformat())
    assert main(["ledger", "prune", "--before", "1d", "--ledger", url]) == 0
    assert "deleted" in capsys.readouterr().out
    with Ledger(url) as ledger:
        assert ledger.count() == 3  # the last day's three events (recorded 1 day minus 27..29 s ago)


def test_prune_refuses_a_date_it_cannot_read_and_a_missing_ledger(tmp_path, capsys):
    assert main(["ledger", "prune", "--before", "last tuesday", "--ledger", f"sqlite:///{tmp_path}/x.db"]) == 2
    assert "cannot read time 'last tuesday'" in capsys.readouterr().err
    assert main(["ledger", "prune", "--before", "2026-01-01", "--ledger", f"sqlite:///{tmp_path}/none.db"]) == 2
    assert "no ledger file" in capsys.readouterr().err
