"""A long-running process picks up the data ``agentcost prices update`` keeps: the watcher notices the
kept file changed, loads it and the catalog prices with it from the next call on; data that does not
load leaves the prices in use as they are."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from agentcost_core import PriceCatalog, Usage
from agentcost_core.accountant import Accountant
from agentcost_core.call import ModelCall, Outcome
from agentcost_core.cli import main
from agentcost_core.prices.base import BasePrices
from agentcost_core.prices.data_files import DATA_FILE
from agentcost_core.prices.reload import PriceDataWatcher


def provider_data(gpt_4o_input: str) -> list[dict]:
    return [{
        "id": "openai", "name": "OpenAI", "api_pattern": "https://api\\.openai\\.com",
        "model_match": {"starts_with": "gpt-"},
        "models": [{"id": "gpt-4o", "match": {"starts_with": "gpt-4o"},
                    "prices": {"input_mtok": gpt_4o_input, "output_mtok": "11"}}],
    }]  # fmt: skip


@pytest.fixture
def kept(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """The data folder, empty at first (the packaged genai-prices data is in use)."""
    monkeypatch.setenv("AGENTCOST_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def update(tmp_path, gpt_4o_input: str) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / f"data-{gpt_4o_input}.json"
    source.write_text(json.dumps(provider_data(gpt_4o_input)))
    assert main(["prices", "update", "--file", str(source)]) == 0


U = Usage(input=1_000_000)


def test_a_running_process_prices_with_the_data_kept_after_it_started(kept) -> None:
    catalog = PriceCatalog(base=BasePrices.load())
    packaged = catalog.cost("gpt-4o", U)
    accountant = Accountant(catalog)
    watcher = PriceDataWatcher(catalog, period=0)
    assert watcher.check() is False  # nothing changed

    update(kept, "3.25")
    assert catalog.cost("gpt-4o", U) == packaged  # not yet looked at
    assert watcher.check() is True and watcher.reloads == 1
    assert catalog.cost("gpt-4o", U) == Decimal("3.25") != packaged
    event, _ = accountant.event(ModelCall("gpt-4o"), Outcome(usage=U, model="gpt-4o", text="ok"))
    assert event.cost == Decimal("3.25") and event.price_source.startswith("genai-prices data ")

    update(kept, "3.5")  # a second update
    assert watcher.check() is True and catalog.cost("gpt-4o", U) == Decimal("3.5")
    assert watcher.check() is False and watcher.reloads == 2


def test_data_that_does_not_load_leaves_the_prices_in_use(kept) -> None:
    catalog = PriceCatalog(base=BasePrices.load())
    watcher = PriceDataWatcher(catalog, period=0)
    update(kept, "3.25")
    watcher.check()
    (kept / "data" / DATA_FILE).write_text('[{"id": "half-writ')  # a broken file in place
    assert watcher.check() is False and watcher.error
    assert catalog.cost("gpt-4o", U) == Decimal("3.25")
    update(kept, "4")  # fixed: the next look loads it
    assert watcher.check() is True and watcher.error is None and catalog.cost("gpt-4o", U) == Decimal(4)


def test_the_background_thread_looks_when_asked(kept) -> None:
    catalog = PriceCatalog(base=BasePrices.load())
    watcher = PriceDataWatcher(catalog, period=3600).start()
    try:
        update(kept, "3.25")
        looked = watcher.request()
        assert watcher.wait(after=looked, timeout=60)
        assert watcher.reloads == 1 and catalog.cost("gpt-4o", U) == Decimal("3.25")
    finally:
        watcher.close()


def test_a_catalogs_own_prices_stay_on_top_of_new_data(kept) -> None:
    catalog = PriceCatalog(base=BasePrices.load()).merged({"models": {"gpt-4o": {"input": "1", "output": "1"}}})
    watcher = PriceDataWatcher(catalog, period=0)
    update(kept, "3.25")
    assert watcher.check() is True
    assert catalog.cost("gpt-4o", U) == Decimal(1)  # the user's override wins over any base data


def test_bad_settings_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="period"):
        PriceDataWatcher(PriceCatalog(), period=-1)
    with pytest.raises(TypeError, match="BasePrices"):
        PriceCatalog().use_base(object())  # type: ignore[arg-type]


def test_a_watcher_looks_only_at_the_folder_it_started_with(kept, monkeypatch) -> None:
    catalog = PriceCatalog(base=BasePrices.load())
    packaged = catalog.cost("gpt-4o", U)
    watcher = PriceDataWatcher(catalog, period=0)
    monkeypatch.setenv("AGENTCOST_DATA_DIR", str(kept / "elsewhere"))
    update(kept, "3.25")  # kept in the other folder
    assert watcher.check() is False and catalog.cost("gpt-4o", U) == packaged
