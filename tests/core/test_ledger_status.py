"""``Ledger.status()`` (live counts) and ``agentcost ledger status`` (what the ledger and the files
beside it hold), including a spool left by a process that stopped without storing its queue."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import ledger_contract as contract
import pytest

from agentcost_core import Ledger, Usage
from agentcost_core.cli import main


def test_status_counts_queued_written_dropped_and_dead_lettered(tmp_path):
    with Ledger(f"sqlite:///{tmp_path / 'l.db'}", flush_interval_s=3600) as ledger:
        ledger.record(contract.make_event(0))
        ledger.record(contract.make_event(1, usage=Usage(output=2**63)))
        assert ledger.status().queued == 2
        ledger.flush()
        status = ledger.status()
        assert (status.queued, status.written, status.dropped, status.dead_lettered) == (0, 1, 0, 1)
        assert status.durability == "fast" and status.dead_letter_file == str(tmp_path / "l.db.deadletter.jsonl")


def test_durability_modes_are_checked_at_construction(tmp_path):
    with pytest.raises(ValueError, match="durability must be one of fast, spool, sync"):
        Ledger(f"sqlite:///{tmp_path / 'l.db'}", durability="paranoid")
    with pytest.raises(ValueError, match="spool"):
        Ledger("memory://", durability="spool")  # no place on disk for a spool
    with Ledger(f"sqlite:///{tmp_path / 'l.db'}", sync=True) as ledger:
        assert ledger.durability == "sync"


CRASHING_CHILD = r"""
import os, sys
from agentcost_core import CostEvent, Ledger, Usage
ledger = Ledger(sys.argv[1], durability="spool", flush_interval_s=3600)
for i in range(5):
    ledger.record(CostEvent(model="m", usage=Usage(input=1), feature="spooled"))
os._exit(0)  # gone without flushing: no exit handlers run
"""


def test_ledger_status_shows_a_stopped_processes_spool_until_the_next_open_replays_it(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Ledger(url) as ledger:
        ledger.record(contract.make_event(0, usage=Usage(input=2**64)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    subprocess.run([sys.executable, "-c", CRASHING_CHILD, url], check=True, env=env, timeout=60)

    assert main(["ledger", "status", "--ledger", url, "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["stored"], status["spool_pending_replay"], status["dead_lettered"]) == (0, 5, 1)
    assert list(status["dead_letter_reasons"].values()) == [1]

    assert main(["ledger", "status", "--ledger", url]) == 0
    table = capsys.readouterr().out
    assert "pending replay  5 " in table and "dead-lettered   1 in " in table

    with Ledger(url) as ledger:  # the next open stores the spool
        assert ledger.count(feature="spooled") == 5
    assert main(["ledger", "status", "--ledger", url, "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["stored"], status["spool_pending_replay"]) == (5, 0)


def test_ledger_status_of_a_missing_file_is_a_one_line_error(tmp_path, capsys):
    assert main(["ledger", "status", "--ledger", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "no ledger file" in capsys.readouterr().err
