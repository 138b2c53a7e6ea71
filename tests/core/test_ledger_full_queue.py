"""A full write queue never blocks an event loop: the event is dropped and counted, with one warning.
From a plain thread a full queue waits (up to ``full_queue_wait_s``) for room."""

from __future__ import annotations

import asyncio
import threading

import pytest

import ledger_contract as contract
from agentcost_core import Ledger
from agentcost_core.ledger.memory import MemoryBackend


class StalledBackend(MemoryBackend):
    """Stores nothing until ``release`` is set; ``entered`` says the writer is stuck in a write."""

    def __init__(self) -> None:
        super().__init__("memory://stalled")
        self.entered = threading.Event()
        self.release = threading.Event()

    def write_many(self, events):
        self.entered.set()
        assert self.release.wait(timeout=60), "the test never released the backend"
        super().write_many(events)


@pytest.fixture
def stalled():
    """A ledger of queue size 2 whose writer is stuck writing event 0, with events 1 and 2 queued."""
    backend = StalledBackend()
    ledger = Ledger(backend=backend, max_queue=2, batch_size=1, flush_interval_s=3600, full_queue_wait_s=60)
    ledger.record(contract.make_event(0, span_id="0"))
    assert backend.entered.wait(timeout=30)
    ledger.record(contract.make_event(1, span_id="1"))
    ledger.record(contract.make_event(2, span_id="2"))  # the queue is full now
    yield ledger, backend
    backend.release.set()
    ledger.close()


def test_a_full_ledger_queue_drops_and_counts_instead_of_blocking_the_event_loop(stalled, caplog):
    ledger, backend = stalled
    loop_done = threading.Event()

    def watchdog():  # if record() blocked the loop, room would appear and the event would be kept
        if not loop_done.wait(timeout=20):
            backend.release.set()

    threading.Thread(target=watchdog, daemon=True).start()

    async def agent_step():
        ledger.record(contract.make_event(3, span_id="3"))
        ledger.record(contract.make_event(4, span_id="4"))
        return ledger.dropped

    with caplog.at_level("WARNING", logger="agentcost.ledger"):
        dropped = asyncio.run(agent_step())
    loop_done.set()
    assert dropped == 2 and not backend.release.is_set()
    assert len([r for r in caplog.records if "queue full" in r.getMessage()]) == 1  # one warning
    backend.release.set()
    assert [e.span_id for e in ledger.events()] == ["0", "1", "2"]


def test_a_full_ledger_queue_makes_a_plain_thread_wait_for_room(stalled):
    ledger, backend = stalled
    about_to_record = threading.Event()

    def producer():
        about_to_record.set()
        ledger.record(contract.make_event(3, span_id="3"))

    t = threading.Thread(target=producer)
    t.start()
    assert about_to_record.wait(timeout=30)
    backend.release.set()
    t.join(timeout=30)
    assert [e.span_id for e in ledger.events()] == ["0", "1", "2", "3"]
    assert ledger.dropped == 0


def test_a_plain_thread_drops_once_the_bounded_wait_is_over():
    backend = StalledBackend()
    ledger = Ledger(backend=backend, max_queue=1, batch_size=1, flush_interval_s=3600, full_queue_wait_s=0.01)
    ledger.record(contract.make_event(0, span_id="0"))
    assert backend.entered.wait(timeout=30)
    ledger.record(contract.make_event(1, span_id="1"))  # fills the queue
    ledger.record(contract.make_event(2, span_id="2"))  # waits 10 ms for room, then drops
    assert ledger.dropped == 1
    backend.release.set()
    assert [e.span_id for e in ledger.events()] == ["0", "1"]
    ledger.close()


def test_a_negative_full_queue_wait_fails_at_construction():
    from agentcost_core import LedgerURLError

    with pytest.raises(LedgerURLError, match="full_queue_wait_s"):
        Ledger("memory://", full_queue_wait_s=-1)
