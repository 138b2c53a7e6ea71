"""Fixtures for the LlamaIndex adapter tests: a handler on the root dispatcher, always detached."""

from __future__ import annotations

from typing import Iterator

import pytest

pytest.importorskip("llama_index.core")

from agentcost_llamaindex import CostEventHandler, instrument  # noqa: E402


@pytest.fixture
def handler() -> Iterator[CostEventHandler]:
    """An instrumented root dispatcher recording into an in-memory ledger."""
    h = instrument("memory://")
    try:
        yield h
    finally:
        h.detach()
        assert h.dispatcher is None


@pytest.fixture(autouse=True)
def _no_handler_left_behind() -> Iterator[None]:
    """Every test leaves the process-wide root dispatcher as it found it."""
    from llama_index.core.instrumentation import get_dispatcher

    d = get_dispatcher()
    before = (list(d.event_handlers), list(d.span_handlers))
    yield
    leftovers = [h for h in d.event_handlers if isinstance(h, CostEventHandler) and all(h is not b for b in before[0])]
    for h in leftovers:
        h.detach()
    assert not leftovers, "a test left a CostEventHandler attached to the root dispatcher"
