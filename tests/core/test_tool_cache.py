"""The core tool-result cache: a TTL per listed tool ("never" for the rest), keys over the tool,
its canonical arguments and the scope, hits recorded through the recorder with ``saved``."""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal
from typing import Any

import pytest

from agentcost_core import ConfigurationError, Ledger
from agentcost_core.attribution import Attribution
from agentcost_core.recorder import CostRecorder
from agentcost_core.rollup import rollup
from agentcost_core.tool_cache import ToolCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Tool:
    """A tool that counts its runs."""

    def __init__(self, name: str = "search") -> None:
        self.name = name
        self.runs: list[Any] = []

    def __call__(self, args: Any) -> Any:
        self.runs.append(args)
        return f"{self.name} result #{len(self.runs)} for {args}"


def cache(**kw: Any) -> ToolCache:
    kw.setdefault("ledger", Ledger("memory://", sync=True))
    return ToolCache(kw.pop("ttl", {"search": 300}), **kw)


def test_a_listed_tool_runs_once_and_the_hit_is_an_event_with_saved() -> None:
    ledger = Ledger("memory://", sync=True)
    c = cache(ledger=ledger, cost={"search": "0.005"}, feature="support")
    search = Tool()
    who = Attribution(user_id="u1")
    first = c.call("search", {"q": "order 4417", "limit": 3}, lambda: search({"q": "order 4417"}), attribution=who)
    second = c.call("search", {"limit": 3, "q": "order 4417"}, lambda: search({"q": "order 4417"}), attribution=who)
    assert second == first and len(search.runs) == 1  # key order of the arguments does not matter
    assert (c.hits, c.misses) == (1, 1)
    [hit] = ledger.events()
    assert (hit.kind, hit.cache_hit, hit.cost, hit.saved) == ("tool", True, Decimal(0), Decimal("0.005"))
    assert (hit.user_id, hit.feature, hit.step, hit.extra) == (
        "u1",
        "support",
        "search",
        {"cache": "tool", "tool": "search"},
    )
    row = rollup(ledger.events()).total
    assert (row.cache_hits, row.cache_savings, row.unpriced_calls) == (1, Decimal("0.005"), 0)


def test_a_tool_not_listed_is_never_cached_and_records_nothing() -> None:
    ledger = Ledger("memory://", sync=True)
    c = cache(ledger=ledger, ttl={"search": 300, "lookup": 0})
    email = Tool("send_email")
    lookup = Tool("lookup")
    for _ in range(3):
        c.call("send_email", {"to": "a@b.c"}, lambda: email({"to": "a@b.c"}))
        c.call("lookup", {"id": 1}, lambda: lookup({"id": 1}))
    assert len(email.runs) == 3 and len(lookup.runs) == 3
    assert not c.caches("send_email") and not c.caches("lookup") and c.caches("search")
    assert ledger.events() == [] and len(c) == 0


def test_a_hit_without_a_known_cost_saves_zero_but_is_counted() -> None:
    ledger = Ledger("memory://", sync=True)
    c = cache(ledger=ledger)
    search = Tool()
    for _ in range(3):
        c.call("search", "plain text argument", lambda: search("x"))
    assert len(search.runs) == 1
    hits = ledger.events()
    assert [(e.cache_hit, e.saved) for e in hits] == [(True, Decimal(0))] * 2


def test_different_arguments_and_different_scopes_miss() -> None:
    c = cache()
    search = Tool()
    u1, u2 = Attribution(user_id="u1"), Attribution(user_id="u2")
    c.call("search", {"q": "a"}, lambda: search("a"), attribution=u1)
    c.call("search", {"q": "b"}, lambda: search("b"), attribution=u1)
    c.call("search", {"q": 1}, lambda: search(1), attribution=u1)
    c.call("search", {"q": "1"}, lambda: search("1"), attribution=u1)  # 1 and "1" are different calls
    assert c.call("search", {"q": "a"}, lambda: search("a"), attribution=u2) == "search result #5 for a"
    assert c.get("search", {"q": "a"}, attribution=u1) is not None
    assert c.get("search", {"q": "a"}, attribution=Attribution(user_id="u3")) is None
    assert len(search.runs) == 5


def test_scope_by_feature_shares_entries_across_users_of_one_feature() -> None:
    c = cache(scope=("feature",))
    search = Tool()
    c.call("search", {"q": "a"}, lambda: search("a"), attribution=Attribution(user_id="u1", feature="kb"))
    c.call("search", {"q": "a"}, lambda: search("a"), attribution=Attribution(user_id="u2", feature="kb"))
    c.call("search", {"q": "a"}, lambda: search("a"), attribution=Attribution(user_id="u2", feature="billing"))
    assert len(search.runs) == 2


def test_entries_expire_after_their_tool_ttl() -> None:
    clock = Clock()
    c = cache(ttl={"search": 60, "docs": math.inf}, clock=clock)
    search, docs = Tool(), Tool("docs")
    c.call("search", {"q": "a"}, lambda: search("a"))
    c.call("docs", {"page": 1}, lambda: docs(1))
    clock.now += 59.9
    c.call("search", {"q": "a"}, lambda: search("a"))
    assert len(search.runs) == 1
    clock.now += 0.2
    c.call("search", {"q": "a"}, lambda: search("a"))
    clock.now += 10**9
    c.call("docs", {"page": 1}, lambda: docs(1))
    assert (len(search.runs), len(docs.runs)) == (2, 1)


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    c = cache(max_entries=2)
    search = Tool()
    for q in ("a", "b"):
        c.call("search", {"q": q}, lambda q=q: search(q))
    c.call("search", {"q": "a"}, lambda: search("a"))  # a is now the most recent
    c.call("search", {"q": "c"}, lambda: search("c"))  # evicts b
    assert len(c) == 2
    assert c.get("search", {"q": "a"}) is not None and c.get("search", {"q": "b"}) is None


def test_arguments_without_a_canonical_form_are_never_cached() -> None:
    c = cache()
    search = Tool()
    for _ in range(2):
        c.call("search", {"q": object()}, lambda: search("?"))
        c.call("search", {"q": float("nan")}, lambda: search("nan"))
    assert len(search.runs) == 4 and len(c) == 0


def test_a_failing_tool_keeps_nothing_and_keep_filters_results() -> None:
    c = cache()
    calls: list[int] = []

    def failing() -> str:
        calls.append(1)
        raise TimeoutError("upstream timed out")

    for _ in range(2):
        with pytest.raises(TimeoutError):
            c.call("search", {"q": "a"}, failing)
    for _ in range(2):
        assert c.call("search", {"q": "b"}, lambda: "Error: rate limited", keep=lambda v: not v.startswith("Error")) \
            == "Error: rate limited"  # fmt: skip
    assert len(calls) == 2 and len(c) == 0


def test_a_cached_none_is_a_hit() -> None:
    c = cache()
    runs: list[int] = []
    for _ in range(2):
        assert c.call("search", {"q": "nothing"}, lambda: runs.append(1)) is None
    assert runs == [1]


def test_invalidate_drops_one_tool_or_all() -> None:
    c = cache(ttl={"search": 300, "docs": 300})
    c.put("search", {"q": "a"}, 1)
    c.put("search", {"q": "b"}, 2)
    c.put("docs", {"p": 1}, 3)
    assert c.invalidate("search") == 2
    assert c.get("docs", {"p": 1}) is not None and c.get("search", {"q": "a"}) is None
    assert c.invalidate() == 1 and len(c) == 0


def test_acall_caches_coroutines() -> None:
    c = cache()
    runs: list[str] = []

    async def search() -> str:
        runs.append("x")
        return "found"

    async def main() -> list[str]:
        return [await c.acall("search", {"q": "a"}, search) for _ in range(3)]

    assert asyncio.run(main()) == ["found"] * 3 and runs == ["x"]


def test_a_recorder_failure_never_breaks_the_tool_call() -> None:
    class Broken(CostRecorder):
        def record(self, *a: Any, **kw: Any) -> Any:
            raise RuntimeError("ledger gone")

    c = ToolCache({"search": 300}, recorder=Broken("memory://"))
    search = Tool()
    assert c.call("search", {"q": "a"}, lambda: search("a")) == c.call("search", {"q": "a"}, lambda: search("a"))
    assert len(search.runs) == 1 and c.internal_errors == 1 and c.hits == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ttl": {"search": -1}},
        {"ttl": {"search": "300"}},
        {"ttl": {"search": float("nan")}},
        {"ttl": ["search"]},
        {"ttl": {"search": 1}, "cost": {"search": 0.1}},
        {"ttl": {"search": 1}, "cost": {"search": "-1"}},
        {"ttl": {"search": 1}, "cost": {"search": "lots"}},
        {"ttl": {"search": 1}, "scope": ("tenant",)},
        {"ttl": {"search": 1}, "scope": "user_id"},
        {"ttl": {"search": 1}, "max_entries": 0},
    ],
)
def test_bad_configuration_fails_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ToolCache(kwargs.pop("ttl"), ledger="memory://", **kwargs)
