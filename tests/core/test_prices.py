"""The packaged catalog, id resolution, long-context and tier pricing, overrides, LiteLLM import."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from agentcost_core import PriceCatalog, PriceFileError, Usage

M = Decimal(1_000_000)
DATA = Path(__file__).resolve().parents[1] / "data"

REQUIRED = [
    "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini", "gpt-5-nano",
    "o3", "o4-mini", "claude-opus-4", "claude-opus-4-1", "claude-opus-4-5", "claude-sonnet-4", "claude-sonnet-4-5",
    "claude-haiku-4-5", "claude-3-5-haiku", "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite",
]  # fmt: skip


@pytest.fixture(scope="module")
def catalog() -> PriceCatalog:
    return PriceCatalog.default()


@pytest.mark.parametrize("model", REQUIRED)
def test_required_models_have_dated_sourced_prices(catalog, model):
    p = catalog.get(model)
    assert p is not None, model
    assert p.base.input > 0 and p.base.output > 0 and p.base.cache_read > 0
    assert p.source and p.origin and p.origin.startswith("genai-prices")  # which data priced it
    assert p.base.cache_read <= p.base.input


@pytest.mark.parametrize(
    "model_id, key",
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("openai/gpt-4o", "gpt-4o"),
        ("azure/gpt-4.1-mini", "gpt-4.1-mini"),
        ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
        # Bedrock in-region and geographic profiles: AWS's regional price (genai-prices' own entry)
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", "regional.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "regional.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "global.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"),  # genai-prices' id of the family
        ("claude-haiku-4.5", "claude-haiku-4-5"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("GPT-4o", "gpt-4o"),
    ],
)
def test_ids_resolve_to_their_family(catalog, model_id, key):
    assert catalog.resolve(model_id) == key


def test_a_dated_snapshot_with_its_own_price_is_not_collapsed(catalog):
    assert catalog.resolve("gpt-4o-2024-05-13") == "gpt-4o-2024-05-13"
    assert catalog.get("gpt-4o-2024-05-13").base.input == Decimal("5.00")


def test_mini_is_not_its_big_sibling(catalog):
    assert catalog.resolve("gpt-5-mini") == "gpt-5-mini" and catalog.resolve("gpt-4o-mini-2024-07-18") == "gpt-4o-mini"


def test_unknown_model_costs_none_never_zero(catalog):
    assert catalog.get("my-private-model") is None
    assert catalog.cost("my-private-model", Usage(input=10, output=10)) is None
    assert catalog.cost(None, Usage(input=10)) is None


def test_exact_decimal_cost_per_bucket(catalog):
    u = Usage(input=1000, cache_read=3000, cache_write_5m=200, cache_write_1h=100, output=500, reasoning=100)
    expected = (
        1000 * Decimal("3.00") + 3000 * Decimal("0.30") + 200 * Decimal("3.75") + 100 * Decimal("6.00") + 500 * Decimal("15.00")
    ) / M
    assert catalog.cost("claude-sonnet-4-5-20250929", u) == expected
    assert isinstance(expected, Decimal)


def test_long_context_reprices_the_whole_request_above_the_threshold(catalog):
    below = Usage(input=150_000, cache_read=50_000, output=1000)  # exactly 200,000 prompt tokens: base rates
    above = Usage(input=150_001, cache_read=50_000, output=1000)
    assert catalog.cost("claude-sonnet-4-5", below) == (150_000 * Decimal(3) + 50_000 * Decimal("0.30") + 1000 * Decimal(15)) / M
    assert catalog.cost("claude-sonnet-4-5", above) == (
        150_001 * Decimal(6) + 50_000 * Decimal("0.60") + 1000 * Decimal("22.50")
    ) / M
    g = catalog.get("gemini-2.5-pro")
    assert g.long_context_threshold == 200_000
    assert catalog.cost("gemini-2.5-pro", Usage(input=250_000, output=10)) == (
        250_000 * g.long_context.input + 10 * g.long_context.output
    ) / M


def test_service_tiers_multiply_or_replace_prices(catalog):
    u = Usage(input=1000, cache_read=1000, output=1000)
    flex = catalog.get("gpt-5").tiers["flex"]
    assert flex.input == Decimal("0.625")
    assert catalog.cost("gpt-5", u, service_tier="flex") == catalog.cost("gpt-5", u) / 2
    assert catalog.cost("gpt-5", u, service_tier="priority") == catalog.cost("gpt-5", u) * 2
    assert catalog.cost("gpt-5", u, service_tier="no-such-tier") == catalog.cost("gpt-5", u)
    # a tier with explicit prices and its own long-context prices (gemini-2.5-pro batch)
    big = Usage(input=300_000, output=100)
    gp = catalog.get("gemini-2.5-pro")
    assert catalog.cost("gemini-2.5-pro", big, service_tier="batch") == (
        300_000 * gp.tier_long_context["batch"].input + 100 * gp.tier_long_context["batch"].output
    ) / M
    assert gp.tier_long_context["batch"].input < gp.long_context.input


def test_overrides_merge_on_top(catalog):
    merged = catalog.merged({"models": {"gpt-4o": {"input": "1", "output": "2"}, "acme-1": {"input": "0.5", "output": "1"}}})
    assert merged.cost("gpt-4o-2024-08-06", Usage(input=M, output=M)) == Decimal(3)
    assert merged.cost("acme-1", Usage(input=2_000_000)) == Decimal(1)
    assert merged.get("claude-haiku-4-5") is not None
    assert catalog.cost("gpt-4o", Usage(input=M)) == Decimal("2.50")  # the original is untouched


def test_env_override_file(tmp_path):
    """A process started with ``AGENTCOST_PRICES`` prices the models of that file by default."""
    import os
    import subprocess
    import sys

    f = tmp_path / "mine.json"
    f.write_text(json.dumps({"models": {"house-model": {"provider": "acme", "input": "1.5", "output": "3"}}}))
    code = (
        "from agentcost_core import PriceCatalog, Usage\n"
        "c = PriceCatalog.default()\n"
        "print(c.cost('house-model', Usage(input=1000)), c.cost('gpt-4o', Usage(input=1_000_000)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "AGENTCOST_PRICES": str(f)},
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert out.stdout.split() == ["0.0015", "2.5"]  # the override, and the packaged prices beside it


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"models": {"x": {"input": "abc", "output": "1"}}}), "is not a number"),
        (json.dumps({"models": {"x": {"input": "-1", "output": "1"}}}), ">= 0"),
        (json.dumps({"models": {"x": {"output": "1"}}}), "missing required price 'input'"),
        (json.dumps({"models": {"x": {"input": 1, "output": 1, "long_context": {"threshold": -3}}}}), "threshold"),
        (json.dumps({"models": []}), "must be an object"),
    ],
)
def test_bad_price_files_fail_loudly_with_the_place(tmp_path, content, message):
    f = tmp_path / "bad.json"
    f.write_text(content)
    with pytest.raises(PriceFileError, match=message) as err:
        PriceCatalog.from_file(f)
    assert "bad.json" in str(err.value)


def test_missing_price_file():
    with pytest.raises(PriceFileError, match="not found"):
        PriceCatalog.from_file("/nonexistent/prices.json")


def test_litellm_import_exact_from_float_prices():
    lite = PriceCatalog.from_file(DATA / "litellm_model_prices_sample.json")  # detected by its shape
    assert lite.get("gpt-4o") is not None and lite.get("sample_spec") is None
    assert lite.cost("gpt-4o", Usage(input=M, cache_read=M, output=M)) == Decimal("2.5") + Decimal("1.25") + Decimal("10")
    raw = json.loads((DATA / "litellm_model_prices_sample.json").read_text())
    via_dict = PriceCatalog.from_litellm(raw)
    assert len(via_dict) == len(lite)
    sonnet = [k for k in raw if "claude-sonnet-4-5" in k and "bedrock" not in k and "/" not in k]
    if sonnet:
        p = lite.get(sonnet[0])
        assert p.base.cache_write_5m == Decimal("3.75") and p.base.cache_write_1h == Decimal("6")


def test_litellm_file_without_token_prices_is_rejected(tmp_path):
    f = tmp_path / "lite.json"
    f.write_text(json.dumps({"img": {"litellm_provider": "openai", "mode": "image_generation"}}))
    with pytest.raises(PriceFileError, match="no model"):
        PriceCatalog.from_file(f)


def _decimal_formula(bp, u: Usage) -> Decimal:
    """The textbook computation the catalog's integer arithmetic must reproduce digit for digit."""
    total = u.input * bp.input + u.output * bp.output
    for n, price in ((u.cache_read, bp.cache_read), (u.cache_write_5m, bp.cache_write_5m),
                     (u.cache_write_1h, bp.cache_write_1h)):  # fmt: skip
        if n:
            total += n * price
    cost = total / Decimal(1_000_000)
    return cost + bp.request if bp.request else cost  # a per-request fee (Perplexity's Sonar models)


def test_cost_arithmetic_equals_the_decimal_formula_in_value_and_digits_for_every_catalog_price():
    import decimal
    import random

    from agentcost_core.prices.model_price import BucketPrices

    catalog = PriceCatalog.default()
    price_sets = []
    for p in catalog:  # every model price the catalog holds
        price_sets += [p.base, *([p.long_context] if p.long_context else []), *p.tiers.values()]
    price_sets += [BucketPrices(*map(Decimal, v)) for v in
                   (("0", "0", "0", "0", "0"), ("1E+1", "0.5", "3", "0.075", "2.000"), ("1E-7", "123456.789", "0.10", "1", "7E-3"))]  # fmt: skip
    rng = random.Random(20261124)
    for bp in price_sets:
        for _ in range(60):
            n = [rng.choice([0, 0, 1, 10, 1_000, 1_000_000, rng.randint(0, 5_000_000)]) for _ in range(5)]
            u = Usage(n[0], n[1], n[2], n[3], n[4], rng.randint(0, n[4]))
            expected = _decimal_formula(bp, u)
            got = bp.cost(u)
            assert got == expected and str(got) == str(expected), (bp, u)
    # Exact whatever the caller's decimal context: a low precision elsewhere does not round costs.
    with decimal.localcontext(decimal.Context(prec=4)):
        assert catalog.cost("gpt-4o", Usage(input=123_457, output=9_876)) == Decimal("0.4074025")


def test_odd_but_valid_price_tables_price_exactly():
    from agentcost_core.prices.model_price import BucketPrices

    free = PriceCatalog.from_dict({"free-model": {"input": -0.0, "output": "-0.00", "provider": "x"}})
    assert str(free.cost("free-model", Usage(1000, output=10))) == "0.00"  # no "-0.00"
    wide = PriceCatalog.from_dict({"m": {"input": "1e-30", "output": "2000"}})  # the widest spread allowed
    assert wide.cost("m", Usage(1, output=1)) == Decimal("0.002000000000000000000000000000000001")  # exact
    with pytest.raises(PriceFileError):
        BucketPrices(Decimal("-1"), Decimal("1"), Decimal("1"), Decimal("1"), Decimal("1"))
