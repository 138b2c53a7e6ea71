"""Retention, the same on every ledger: ``Ledger.prune(before)`` deletes the events (and logged prompts)
recorded before a time, keeps the rest, and the report over what is left is unchanged."""

from __future__ import annotations

import time
from decimal import Decimal

from agentcost_core import CostEvent, Ledger, Usage
from agentcost_core.prompt_log import PromptRecord
from agentcost_core.rollup import rollup

DAY = 86400.0


def recorded(now: float) -> list[CostEvent]:
    """Three events a day for ten days, the oldest ten days ago."""
    return [
        CostEvent(model="gpt-4o", usage=Usage(input=100 + i), cost=Decimal("0.00025") * (i + 1), priced=True,
                  feature=["search", "support", "billing"][i % 3], session_id=f"s{i % 4}",
                  ts=now - 10 * DAY + DAY * (i // 3) + i)
        for i in range(30)
    ]  # fmt: skip


def check_prune(ledger: Ledger) -> int:
    """Prune at five days ago and check what stays, the report of it and the prompts; returns how many events stay."""
    now = time.time()
    events = recorded(now)
    ledger.record_many(events)
    old, new = events[0], events[-1]
    for e in (old, new):
        ledger.record_prompt(PromptRecord(e.id, e.ts, '[{"role": "user"}]', "[]"))
    cut = now - 5 * DAY
    kept = [e for e in events if e.ts >= cut]
    assert 0 < len(kept) < len(events)
    assert ledger.prune(cut) == len(events) - len(kept)
    assert ledger.count() == len(kept) and min(e.ts for e in ledger.events()) >= cut
    assert ledger.prompts(old.id) is None and ledger.prompts(new.id) is not None
    got, want = ledger.rollup(by="feature").as_dict(), rollup(kept, by="feature").as_dict()
    for d in (got, want):
        d.pop("window_s")
        d.pop("projected_monthly")
    assert got == want
    assert ledger.prune(cut) == 0  # nothing older is left
    return len(kept)
