"""A synthetic ledger for ``agentcost profile`` and ``agentcost replay`` tests, with two models of our
own prices so every expected dollar figure can be worked out by hand:

* big-model (frontier): $10 input, $1 cache read, $40 output per 1M tokens
* small-model (nano):   $0.10 input, $0.01 cache read, $0.40 output per 1M tokens

Traffic (costs worked out in the tests that use them):

* 100 ordinary sessions ``n00``..``n99`` (feature chat, small-model, step answer): 2 calls each of
  1,000 input + 100 output tokens ($0.00014 a call, $0.00028 a session);
* one runaway session ``loop`` (feature research, big-model, step search): 8 calls, call i with
  1,000·i input + 100 output tokens ($0.01·i + $0.004; $0.392 in all), each followed by a
  ``web_search`` tool event ($0);
* 10 classification calls outside sessions (feature triage, step classify_intent, big-model on the
  frontier tier): 2,000 input + 5 output tokens ($0.0202 each).
"""

from __future__ import annotations

from decimal import Decimal

from agentcost_core import CostEvent, Usage
from agentcost_core.prices import PriceCatalog

PRICES = {
    "models": {
        "big-model": {"provider": "test", "input": "10", "cache_read": "1", "output": "40"},
        "small-model": {"provider": "test", "input": "0.10", "cache_read": "0.01", "output": "0.40"},
    }
}
T0 = 1_790_000_000.0


def catalog() -> PriceCatalog:
    return PriceCatalog.from_dict(PRICES)


def events() -> list[CostEvent]:
    prices = catalog()
    out: list[CostEvent] = []

    def add(model: str | None, usage: Usage, **kw: object) -> None:
        cost = Decimal(0) if model is None else prices.cost(model, usage)
        out.append(CostEvent(model, usage, cost, priced=True, ts=T0 + len(out), **kw))  # type: ignore[arg-type]

    for n in range(100):
        for _ in range(2):
            add("small-model", Usage(input=1000, output=100), session_id=f"n{n:02d}", feature="chat", step="answer",
                tier="nano")  # fmt: skip
    for i in range(1, 9):
        add("big-model", Usage(input=1000 * i, output=100), session_id="loop", feature="research", step="search",
            tier="frontier")  # fmt: skip
        add(None, Usage(), kind="tool", session_id="loop", feature="research", step="web_search")
    for _ in range(10):
        add("big-model", Usage(input=2000, output=5), feature="triage", step="classify_intent", tier="frontier")
    return out
