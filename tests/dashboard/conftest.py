"""The dashboard tests' fixtures: a planted SQLite ledger, and headless Chromium (Debian's, driven by Playwright).

The browser is one per test module (a session-wide Playwright loop would sit under other tests'
``asyncio.run``). Every page runs behind a :class:`~dashboard_pages.NetworkGuard` that lets through
only ``file:`` and ``http://127.0.0.1`` requests and fails the test on any other: the dashboard must
need no network.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_pages import CHROMIUM, NetworkGuard, Planted, planted_events

from agentcost_core.ledger import Ledger


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
