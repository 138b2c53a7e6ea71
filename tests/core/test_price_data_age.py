"""The packaged genai-prices data's age counts from the data's own date (its newest price change up
to its install: the package records no build date), not from the install: a fresh install of old
data is reported old and warned about. Kept ``prices update`` data counts from its fetch, as before."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from agentcost_core import PriceCatalog
from agentcost_core.cli import main
from agentcost_core.prices.base import BasePrices
from agentcost_core.prices.commands import data_summary
from agentcost_core.prices.genai import load_providers

OLD = [{
    "id": "openai", "name": "OpenAI", "api_pattern": "https://api\\.openai\\.com", "model_match": {"starts_with": "gpt-"},
    "models": [{"id": "gpt-4o", "match": {"starts_with": "gpt-4o"}, "prices": [
        {"prices": {"input_mtok": "5", "output_mtok": "15"}},
        {"constraint": {"start_date": "2024-05-13"}, "prices": {"input_mtok": "2.5", "output_mtok": "10"}},
        {"constraint": {"start_date": "2099-01-01"}, "prices": {"input_mtok": "1", "output_mtok": "4"}},  # announced
    ]}],
}]  # fmt: skip
DATED = datetime(2024, 5, 13, tzinfo=UTC).timestamp()


@pytest.fixture
def old_packaged_data(tmp_path, monkeypatch) -> None:
    """genai-prices' bundled data is OLD here (its newest change 2024-05-13), freshly installed."""
    monkeypatch.setenv("AGENTCOST_DATA_DIR", str(tmp_path / "no-kept-data"))
    monkeypatch.setattr("genai_prices.data.providers", load_providers(OLD))


def test_freshly_installed_old_data_is_as_old_as_its_newest_price_change(old_packaged_data) -> None:
    info = data_summary(PriceCatalog(base=BasePrices.load()))
    assert info["dated"] == "2024-05-13" and info["since"] == DATED  # not the 2099 change announced in it
    assert info["age_days"] == pytest.approx((time.time() - DATED) / 86400, abs=0.2)
    assert info["stale"] and info["path"] is None


def test_agentcost_prices_warns_about_freshly_installed_old_data(old_packaged_data, monkeypatch, capsys) -> None:
    catalog = PriceCatalog(base=BasePrices.load())
    monkeypatch.setattr(PriceCatalog, "default", classmethod(lambda cls: catalog))
    assert main(["prices"]) == 0
    out = capsys.readouterr()
    assert "days old (more than 30)" in out.err and "agentcost prices update" in out.err
    assert "newest price change 2024-05-13" in out.out
