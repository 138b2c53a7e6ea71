"""The contract suite: a parametrized ``adapter`` fixture (ids "langchain", "llamaindex") whose
drivers (``contract_drivers.py``) drive each adapter's real path through the same small interface."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contract_drivers import DRIVERS  # noqa: E402


@pytest.fixture(params=list(DRIVERS), ids=list(DRIVERS))
def adapter(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield DRIVERS[request.param]()


@pytest.fixture
def both() -> dict[str, Any]:
    """Both drivers, for tests that compare the adapters' outcomes with each other."""
    return {name: cls() for name, cls in DRIVERS.items()}
