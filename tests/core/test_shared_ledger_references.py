"""Shared ledgers are reference-counted: closing one reference never closes the others' ledger."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import ledger_contract as contract
from agentcost_core import Ledger

pytest.importorskip("langchain_core")

from agentcost_langchain import CostCallbackHandler  # noqa: E402
from agentcost_langchain.testing import ScriptedChatModel  # noqa: E402


def test_closing_one_handlers_ledger_leaves_the_shared_ledger_recording_for_other_handlers(tmp_path):
    url = f"sqlite:///{tmp_path}/shared.db"
    first = CostCallbackHandler(url, feature="first")
    second = CostCallbackHandler(url, feature="second")
    model = ScriptedChatModel(script=["ok"])
    model.invoke("before", config={"callbacks": [first]})
    first.ledger.close()  # the first handler is done with its ledger
    for i in range(5):
        model.invoke(f"after {i}", config={"callbacks": [second]})
    second.ledger.close()  # the last reference: stores what is queued
    with Ledger(url) as reader:
        stored = {e.id for e in reader.events(feature="second")}
        assert stored == {e.id for e in second.events} and len(stored) == 5
        assert reader.count(feature="first") == 1


def test_each_shared_reference_closes_once_and_the_last_closes_the_ledger(tmp_path):
    url = f"sqlite:///{tmp_path}/refs.db"
    a, b = Ledger.shared(url), Ledger.shared(url)
    a.record(contract.make_event(1))
    a.close()
    a.close()  # closing a reference twice drops it once
    with pytest.raises(ValueError, match="closed"):
        a.record(contract.make_event(2))  # a closed reference refuses use...
    b.record(contract.make_event(3))  # ...the others keep working
    assert b.count() == 2
    b.close()
    again = Ledger.shared(url)  # after the last reference, the URL opens afresh
    assert again.count() == 2
    again.close()


def test_a_ledger_you_construct_closes_for_real_and_stores_its_queue(tmp_path):
    url = f"sqlite:///{tmp_path}/own.db"
    shared = Ledger.shared(url)
    own = Ledger(url, flush_interval_s=3600)
    for i in range(100):
        own.record(contract.make_event(i))
    own.close()
    with pytest.raises(ValueError, match="closed"):
        own.record(contract.make_event(0))
    assert shared.count() == 100  # the shared ledger of the same URL is a different ledger
    shared.close()


def test_events_of_shared_references_never_closed_are_stored_at_exit(tmp_path):
    db = tmp_path / "exit.db"
    code = textwrap.dedent(
        f"""
        from agentcost_core import CostEvent, Ledger, Usage
        kept = Ledger.shared("sqlite:///{db}")
        other = Ledger.shared("sqlite:///{db}")
        for i in range(300):
            kept.record(CostEvent(model="gpt-4o", usage=Usage(input=i)))
        other.close()
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    with Ledger(f"sqlite:///{db}") as reader:
        assert reader.count() == 300
