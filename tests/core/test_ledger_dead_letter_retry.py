"""Dead letters back in: ``Ledger.retry_dead_letters()`` and ``agentcost ledger retry-dead-letters``
store what now fits exactly once, keep what still fails with its current reason, and never lose a
line. (The PostgreSQL outage cases are in ``tests/faults/test_ledger_stall.py``.)"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import ledger_contract as contract
import pytest

from agentcost_core import Ledger, LedgerURLError, Usage
from agentcost_core.cli import main


def entries(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def dead_letter_while_locked(db: Path, n: int) -> Path:
    """Record ``n`` good events and one poison event while another connection holds the SQLite
    file's write lock past ``retry_s``: all of them are dead-lettered as unreachable."""
    ledger = Ledger(f"sqlite:///{db}", timeout_s=0.1, retry_s=0.2, flush_interval_s=3600)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        ledger.record_many([contract.make_event(i, span_id=f"good-{i}") for i in range(n)])
        ledger.record(contract.make_event(n, span_id="poison", usage=Usage(input=2**63)))
        ledger.flush()
        status = ledger.status()
        assert (status.written, status.dead_lettered) == (0, n + 1)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        ledger.close()
    dead = Path(status.dead_letter_file)
    assert {e["reason"].split(":")[0] for e in entries(dead)} == {"ledger unreachable"}
    return dead


def test_the_cli_stores_what_now_fits_once_and_keeps_the_poison_with_its_reason(tmp_path, capsys):
    db = tmp_path / "l.db"
    dead = dead_letter_while_locked(db, 40)
    url = f"sqlite:///{db}"

    assert main(["ledger", "retry-dead-letters", "--ledger", url]) == 1  # one is still failing
    out = capsys.readouterr().out
    assert "stored          40 dead-lettered event(s)" in out and "still failing   1" in out
    [poison] = entries(dead)
    assert poison["event"]["span_id"] == "poison" and "64-bit" in poison["reason"]  # the current reason

    assert main(["ledger", "retry-dead-letters", "--ledger", url, "--format", "json"]) == 1  # idempotent
    result = json.loads(capsys.readouterr().out)
    assert (result["stored"], result["already_stored"], result["still_dead"]) == (0, 0, 1)
    with Ledger(url) as ledger:
        spans = [e.span_id for e in ledger.events()]
    assert sorted(spans) == sorted(f"good-{i}" for i in range(40))  # each once, no poison
    assert not list(tmp_path.glob("*.retrying-*"))  # the claimed files are gone


def test_an_entry_already_stored_is_removed_without_a_second_row(tmp_path):
    db = tmp_path / "l.db"
    dead = dead_letter_while_locked(db, 5)
    with Ledger(f"sqlite:///{db}", sync=True) as ledger:
        first = entries(dead)[0]["event"]
        from agentcost_core.ledger.jsonlines import event_from_dict

        ledger.record(event_from_dict(first))  # stored by other means meanwhile
        dead.write_text(dead.read_text() + dead.read_text().splitlines()[1] + "\n")  # and a duplicate line
        result = ledger.retry_dead_letters()
        assert (result.stored, result.already_stored, result.still_dead) == (4, 1, 1)
        assert ledger.count() == 5
        assert len({e.id for e in ledger.events()}) == 5


def test_unreadable_lines_and_a_retry_that_stopped_half_way_lose_nothing(tmp_path):
    db = tmp_path / "l.db"
    dead = dead_letter_while_locked(db, 3)
    lines = dead.read_text().splitlines()
    # a retry killed half-way left its claimed file (its process, pid 2**22 + 1, is gone)
    orphan = dead.with_name(f"{dead.name}.retrying-{2**22 + 1}-deadbeef")
    orphan.write_text(lines[0] + "\n")
    dead.write_text("\n".join([*lines[1:], '{"at": 1, "reason": "x", "event": {"trunc']) + "\n")
    with Ledger(f"sqlite:///{db}", sync=True) as ledger:
        result = ledger.retry_dead_letters()
        assert (result.stored, result.still_dead, result.unreadable) == (3, 1, 1)
        assert ledger.count() == 3
    assert not orphan.exists()
    kept = dead.read_text().splitlines()
    assert len(kept) == 2 and '"event": {"trunc' in kept[1]  # the unreadable line, as it was


def test_a_ledger_with_no_dead_letters_has_nothing_to_retry(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with Ledger(url) as ledger:
        ledger.record(contract.make_event(0))
        assert ledger.retry_dead_letters().stored == 0
    assert main(["ledger", "retry-dead-letters", "--ledger", url]) == 0
    assert "stored          0" in capsys.readouterr().out
    assert main(["ledger", "retry-dead-letters", "--ledger", url, "--retry-s", "nan"]) == 2


def test_sqlite_ledger_errors_redact_a_password_in_the_url(tmp_path):
    folder = tmp_path / "db?password=hunter2"  # a folder where the ledger file should be
    folder.mkdir()
    for url in (
        "sqlite:////proc/no-such-dir/l.db?password=hunter2",  # the folder cannot be created
        f"sqlite:///{folder}",  # sqlite3 cannot open a folder
    ):
        with pytest.raises(LedgerURLError) as raised:
            Ledger(url)
        assert "hunter2" not in str(raised.value) and "password=***" in str(raised.value)


def test_a_retry_that_still_fails_logs_the_dead_letter_file_it_keeps_the_event_in(tmp_path, capsys, caplog):
    db = tmp_path / "l.db"
    url = f"sqlite:///{db}"
    with Ledger(url, sync=True) as ledger:
        ledger.record(contract.make_event(0, span_id="poison", usage=Usage(input=2**63)))
        dead = Path(ledger.status().dead_letter_file)
    assert len(entries(dead)) == 1
    caplog.clear()

    with caplog.at_level("WARNING", logger="agentcost.ledger"):
        assert main(["ledger", "retry-dead-letters", "--ledger", url]) == 1
    assert f"still failing   1 in {dead}" in capsys.readouterr().out
    [message] = [r.getMessage() for r in caplog.records if r.name == "agentcost.ledger"]
    assert message == (
        f"agentcost ledger: 1 dead-lettered event(s) still cannot be stored; kept in {dead} with their current reason"
    )
    assert len(entries(dead)) == 1
