"""Ledger URLs, the background writer, sync mode and the shared contract on memory and SQLite."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from agentcost_core import Ledger, LedgerURLError
from agentcost_core.ledger import default_ledger_url

import ledger_contract as contract  # noqa: E402  (tests/ is on sys.path via rootdir conftest)

CHECKS = [
    contract.check_round_trip_is_exact,
    contract.check_unpriced_stays_none,
    contract.check_filters_and_windows,
    contract.check_rollup,
    contract.check_concurrent_writers_lose_nothing,
]


@pytest.fixture(params=["memory", "sqlite", "sqlite-sync"])
def ledger(request, tmp_path):
    if request.param == "memory":
        lg = Ledger("memory://")
    else:
        lg = Ledger(f"sqlite:///{tmp_path}/l.db", sync=request.param.endswith("sync"))
    yield lg
    lg.close()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_contract(ledger, check):
    check(ledger)


def test_default_url_is_sqlite_under_cwd_or_env(monkeypatch):
    monkeypatch.delenv("AGENTCOST_LEDGER", raising=False)
    assert default_ledger_url() == "sqlite:///.agentcost/ledger.db"
    monkeypatch.setenv("AGENTCOST_LEDGER", "memory://")
    assert default_ledger_url() == "memory://"


def test_default_ledger_file_is_created_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTCOST_LEDGER", raising=False)
    lg = Ledger()
    lg.record(contract.make_event(1))
    lg.close()
    assert (tmp_path / ".agentcost" / "ledger.db").is_file()
    assert Ledger(f"sqlite:///{tmp_path}/.agentcost/ledger.db").count() == 1


@pytest.mark.parametrize(
    "url, message",
    [
        ("", "non-empty"),
        ("ledger.db", "no scheme"),
        ("mysql://x/y", "unknown ledger scheme 'mysql'"),
        ("sqlite://", "needs a path"),
        ("sqlite:///", "needs a path"),
    ],
)
def test_bad_urls_fail_loudly_with_the_accepted_forms(url, message):
    with pytest.raises(LedgerURLError, match=message):
        Ledger(url)


def test_unreachable_postgres_fails_at_construction():
    with pytest.raises(LedgerURLError, match="cannot connect"):
        Ledger("postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=2")


def test_background_writer_batches_and_flush_stores_everything(tmp_path):
    lg = Ledger(f"sqlite:///{tmp_path}/l.db", batch_size=500, flush_interval_s=60)
    for i in range(10_000):
        lg.record(contract.make_event(i))
    lg.flush()
    assert lg.backend.count() == 10_000
    lg.close()


def test_a_failing_backend_is_logged_not_raised(caplog):
    from agentcost_core.ledger.memory import MemoryBackend

    class OnFire(MemoryBackend):
        fail = True

        def write_many(self, events):
            if self.fail:
                raise RuntimeError("disk on fire")
            super().write_many(events)

    backend = OnFire()
    lg = Ledger(backend=backend)
    lg.record(contract.make_event(1))
    with caplog.at_level("ERROR", logger="agentcost.ledger"):
        lg.flush()
    assert "ledger write failed" in caplog.text
    backend.fail = False
    lg.record(contract.make_event(2))  # the writer thread survived the failing store
    assert [e.span_id for e in lg.events()] == ["sp2"]
    lg.close()


def test_events_recorded_before_exit_are_flushed_at_exit(tmp_path):
    db = tmp_path / "exit.db"
    code = textwrap.dedent(
        f"""
        from agentcost_core import Ledger, CostEvent, Usage
        lg = Ledger("sqlite:///{db}", flush_interval_s=3600)
        for i in range(1234):
            lg.record(CostEvent(model="gpt-4o", usage=Usage(input=i)))
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert Ledger(f"sqlite:///{db}").count() == 1234


def test_events_of_a_dropped_ledger_are_still_flushed_at_exit(tmp_path):
    db = tmp_path / "gone.db"
    code = textwrap.dedent(
        f"""
        import gc
        from agentcost_core import Ledger, CostEvent, Usage
        def work():
            lg = Ledger("sqlite:///{db}", flush_interval_s=3600)
            for i in range(500):
                lg.record(CostEvent(model="gpt-4o", usage=Usage(input=i)))
        work()
        gc.collect()  # the Ledger object is gone; its writer (and queue) must still flush at exit
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert Ledger(f"sqlite:///{db}").count() == 500
