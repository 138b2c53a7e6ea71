"""Schema version 5's rollup tables on SQLite (``events_hourly``, ``events_sessions``): a report that
reads them equals the Python rollup of the events after a migration that builds them from a version 4
ledger, after a prune that cuts an hour and sessions in two, after ``clear``, and with several writers
on the file at once."""

from __future__ import annotations

import sqlite3

import rollup_cases as cases

from agentcost_core import Ledger

_TO_VERSION_4 = (
    "DROP TABLE events_hourly; DROP TABLE events_sessions; "
    "DROP INDEX events_feature_cost; DROP INDEX events_notices; PRAGMA user_version = 4;"
)


def test_a_version_4_ledger_gains_rollup_tables_built_from_its_events(tmp_path):
    path = tmp_path / "v4.db"
    events = cases.varied_events()
    with Ledger(f"sqlite:///{path}", sync=True) as ledger:
        ledger.record_many(events)
    conn = sqlite3.connect(path)  # back to version 4's layout, the events kept
    conn.executescript(_TO_VERSION_4)
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == len(events)
    conn.close()
    with Ledger(f"sqlite:///{path}", sync=True) as ledger:  # the migration sums the stored events
        cases.check_equal_to_python(ledger, events)
        cases.check_equal_to_python(ledger, events, feature="support")
        more = cases.varied_events(30)
        ledger.record_many(more)  # and the writer adds the next ones
        cases.check_equal_to_python(ledger, events + more)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
    assert conn.execute("SELECT SUM(n) FROM events_hourly").fetchone()[0] == len(events) + len(more)
    conn.close()


def test_a_prune_that_cuts_an_hour_and_sessions_keeps_the_rollup_exact(tmp_path):
    with Ledger(f"sqlite:///{tmp_path}/p.db", sync=True) as ledger:
        cases.check_prune_keeps_the_rollup_exact(ledger, cases.varied_events())


def test_a_prune_beyond_any_date_deletes_everything_and_empties_the_rollup(tmp_path):
    with Ledger(f"sqlite:///{tmp_path}/p.db", sync=True) as ledger:
        cases.check_prune_beyond_any_date_empties_the_rollup(ledger, cases.varied_events())


def test_a_report_reads_one_snapshot_while_another_connection_prunes(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    with Ledger(url, sync=True) as ledger, Ledger(url, sync=True) as other:
        cases.check_a_report_reads_one_snapshot(ledger, other, "events", cases.varied_events())


def test_clear_empties_the_rollup_tables_too(tmp_path):
    with Ledger(f"sqlite:///{tmp_path}/c.db", sync=True) as ledger:
        ledger.record_many(cases.varied_events())
        ledger.clear()
        fresh = cases.varied_events(40)
        ledger.record_many(fresh)
        cases.check_equal_to_python(ledger, fresh)


def test_writers_on_their_own_connections_at_once_keep_the_rollup_exact(tmp_path):
    url = f"sqlite:///{tmp_path}/w.db"
    ledgers = [Ledger(url, sync=True) for _ in range(3)]
    try:
        cases.check_concurrent_writers_keep_the_rollup_exact(ledgers, cases.varied_events(240))
    finally:
        for ledger in ledgers:
            ledger.close()
