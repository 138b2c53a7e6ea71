"""The dashboard tests: a planted SQLite ledger, and headless Chromium (Debian's, driven by Playwright).

The browser is one per test module (a session-wide Playwright loop would sit under other tests'
``asyncio.run``). Every page runs behind a guard that lets through only ``file:`` and
``http://127.0.0.1`` requests and fails the test on any other: the dashboard must need no network.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agentcost_core.events import CostEvent
from agentcost_core.ledger import Ledger
from agentcost_core.prices import PriceCatalog
from agentcost_core.rollup import CALL_KINDS
from agentcost_core.usage import Usage

CHROMIUM = os.environ.get("AGENTCOST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "dashboard"
#: 2026-11-30 00:00 UTC: the planted ledger's first hour.
T0 = datetime(2026, 11, 30, tzinfo=UTC).timestamp()


@dataclass
class Planted:
    """A ledger written for the dashboard tests, and what it holds."""

    url: str
    path: Path
    events: list[CostEvent]

    @property
    def calls(self) -> list[CostEvent]:
        return [e for e in self.events if e.kind in CALL_KINDS]

    def spend(self, **where: Any) -> Decimal:
        """Exact priced spend of the calls matching ``where`` (field=value; ``since``/``until`` on ts)."""
        since, until = where.pop("since", None), where.pop("until", None)
        total = Decimal(0)
        for e in self.calls:
            if since is not None and e.ts < since or until is not None and e.ts >= until:
                continue
            if all(getattr(e, k) == v for k, v in where.items()) and e.cost is not None:
                total += e.cost
        return total

    def count(self, **where: Any) -> int:
        return sum(1 for e in self.calls if all(getattr(e, k) == v for k, v in where.items()))


def _call(
    model: str, *, minute: float, feature: str, agent: str, session: str, user: str, usage: Usage, **more: Any
) -> CostEvent:
    cost = PriceCatalog.default().cost(model, usage, service_tier=more.get("service_tier"))
    if more.pop("unpriced", False):
        cost = None
    return CostEvent(
        model, usage, cost=cost, priced=cost is not None, provider=more.pop("provider", "openai"),
        feature=feature, agent_id=agent, session_id=session, user_id=user, ts=T0 + minute * 60, **more,
    )  # fmt: skip


def planted_events() -> list[CostEvent]:
    """Two features, three agents, five sessions, three users, over two days; one unpriced model, one call
    with estimated tokens, routed calls with their reason, budget events, an anomaly and a routing decision."""
    ev = [
        _call("gpt-4o-mini", minute=5, feature="support", agent="triage", session="s-1", user="alice",
              usage=Usage(input=1200, output=150), step="classify", tier="nano", trace_id="trace-1",
              latency_s=0.412, extra={"route_reason": "short question: nano", "top_model": "gpt-4o"}),
        _call("gpt-4o", minute=7, feature="support", agent="triage", session="s-1", user="alice",
              usage=Usage(input=3400, cache_read=1024, output=620, reasoning=0), step="answer", tier="frontier",
              trace_id="trace-1", latency_s=2.25),
        _call("claude-sonnet-4-5", minute=65, feature="support", agent="writer", session="s-2", user="bob",
              usage=Usage(input=5000, cache_read=2000, cache_write_5m=800, output=900), provider="anthropic",
              step="draft", trace_id="trace-2", latency_s=3.5),
        _call("claude-sonnet-4-5", minute=70, feature="support", agent="writer", session="s-2", user="bob",
              usage=Usage(input=5200, cache_read=2600, output=1200), provider="anthropic", step="draft",
              trace_id="trace-2", latency_s=4.0, estimated=True),
        _call("mystery-model-x", minute=80, feature="support", agent="writer", session="s-2", user="bob",
              usage=Usage(input=900, output=100), step="polish", trace_id="trace-2", unpriced=True),
        _call("gpt-4o-mini", minute=60 * 26, feature="search", agent="retriever", session="s-3", user="alice",
              usage=Usage(input=800, output=60), step="rewrite", trace_id="trace-3", latency_s=0.3),
        _call("gpt-4o", minute=60 * 26 + 3, feature="search", agent="retriever", session="s-3", user="alice",
              usage=Usage(input=9000, output=400), step="answer", trace_id="trace-3", latency_s=1.9),
        _call("gpt-4o", minute=60 * 30, feature="search", agent="retriever", session="s-4", user="carol",
              usage=Usage(input=20000, output=1500), step="answer", trace_id="trace-4", latency_s=5.1),
        _call("gpt-4o-mini", minute=60 * 31, feature="search", agent="triage", session="s-5", user="carol",
              usage=Usage(input=700, output=90), step="classify", tier="nano", trace_id="trace-5",
              extra={"route_reason": "heuristic score 0.12 < 0.3", "top_model": "gpt-4o"}),
    ]  # fmt: skip
    budget = {"budget": "support-daily", "per": "feature", "key": "support", "dimension": "usd", "limit": "0.05",
              "action": "notify"}  # fmt: skip
    ev += [
        CostEvent(None, kind="budget.warning", feature="support", agent_id="writer", session_id="s-2", user_id="bob",
                  ts=T0 + 66 * 60, extra={**budget, "level": "warning", "committed": "0.036", "fraction": 0.72,
                                          "message": "budget 'support-daily' warning: $0.036 of $0.05 (72%)"}),
        CostEvent(None, kind="budget.exceeded", feature="support", agent_id="writer", session_id="s-2", user_id="bob",
                  ts=T0 + 71 * 60, extra={**budget, "level": "exceeded", "committed": "0.0612", "fraction": 1.224,
                                          "action": "block", "message": "budget 'support-daily' exceeded"}),
        CostEvent(None, kind="anomaly.spike", feature="search", agent_id="retriever", session_id="s-4",
                  user_id="carol", ts=T0 + 60 * 30 * 60 + 5,
                  extra={"message": "one call of retriever cost $0.065, 11.2x its 24-hour average"}),
        CostEvent(None, kind="route", step="classify", trace_id="trace-5", ts=T0 + 60 * 31 * 60 - 1,
                  extra={"reason": "heuristic"}),
    ]  # fmt: skip
    return ev


@pytest.fixture
def planted(tmp_path: Path) -> Planted:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    events = planted_events()
    with Ledger(url, sync=True) as ledger:
        ledger.record_many(events)
    return Planted(url, path, events)


def _chromium_or_skip() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install '.[dev]')")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install chromium (.ci/run does), or set AGENTCOST_CHROMIUM")
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _chromium_or_skip()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield b
        finally:
            b.close()


class NetworkGuard:
    """Aborts, and remembers, every request that is not to a ``file:`` URL or to 127.0.0.1."""

    def __init__(self) -> None:
        self.allowed: list[str] = []
        self.blocked: list[str] = []

    LOCAL = ("file:", "data:", "about:", "http://127.0.0.1:", "http://127.0.0.1/")

    def __call__(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(self.LOCAL):
            self.allowed.append(url)
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def seen(self, request: Any) -> None:
        """Every request the page makes (a ``file:`` load too, which routes do not see)."""
        if not request.url.startswith(self.LOCAL) and request.url not in self.blocked:
            self.blocked.append(request.url)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page whose every request goes through a :class:`NetworkGuard`; script errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    guard = NetworkGuard()
    context.route("**/*", guard)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("request", guard.seen)
    pg.network_guard = guard
    try:
        yield pg
    finally:
        context.close()
    assert not errors, f"script errors on the page: {errors}"
    assert not guard.blocked, f"the dashboard asked the network for: {guard.blocked}"


def screenshot(page: Any, name: str) -> Path:
    """A full-page screenshot kept as a test artefact (tests/artifacts/dashboard/, not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
