"""Our overlay on genai-prices: every disagreement with genai-prices is deliberate and explained.

Each overlay entry that corrects a genai-prices model lists the price fields it changes in
``corrects`` and says why in ``reason``; this test recomputes the disagreements from the data and
fails on one that is not declared (a new, unexplained difference) or on a declared one that no
longer differs (genai-prices caught up: drop the correction).
"""

from __future__ import annotations

from agentcost_core.prices.base import BasePrices, load_overlay
from agentcost_core.prices.genai import GenaiPrices, genai_version, load_providers
from agentcost_core.prices.model_price import ModelPrice

FIELDS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")


def _fields(p: ModelPrice) -> dict[str, object]:
    out: dict[str, object] = {f: getattr(p.base, f) for f in FIELDS}
    out["long_context.threshold"] = p.long_context_threshold
    for f in FIELDS:
        out[f"long_context.{f}"] = getattr(p.long_context, f) if p.long_context else None
    for tier, prices in p.tiers.items():
        for f in FIELDS:
            out[f"service_tiers.{tier}.{f}"] = getattr(prices, f)
    return out


def _declared(field: str, corrects: list[str]) -> bool:
    return any(field == c or field.startswith(c + ".") for c in corrects)


def test_every_disagreement_with_genai_prices_is_declared_and_explained() -> None:
    genai = GenaiPrices.build(load_providers(), origin=f"genai-prices {genai_version()}")
    overlay = load_overlay()
    plain = BasePrices(genai, {"models": {}})
    corrected = BasePrices(genai, overlay)
    rows = []
    for (provider, model), entry in corrected.corrections.items():
        theirs = _fields(plain.model_price((provider, model)))
        ours = _fields(corrected.model_price((provider, model)))
        corrects = list(entry.get("corrects") or [])
        differing = sorted(f for f in set(theirs) | set(ours) if theirs.get(f) != ours.get(f))
        for f in differing:
            assert _declared(f, corrects), (
                f"{provider}/{model}.{f}: genai-prices {theirs.get(f)} vs overlay {ours.get(f)} is not declared"
            )
            rows.append(
                f"{provider}/{model} {f}: genai-prices {theirs.get(f)} -> overlay {ours.get(f)} ({entry['reason']})"
            )
        for c in corrects:
            assert any(_declared(f, [c]) for f in differing), (
                f"{provider}/{model}: declares {c} but agrees with genai-prices"
            )
        assert entry.get("reason") and entry.get("source") and entry.get("date")
    print(f"\n{len(rows)} deliberate disagreements in {len(corrected.corrections)} corrections, "
          f"{len(corrected.additions)} additions:")  # fmt: skip
    print("\n".join(rows))
    assert rows  # the overlay does correct something (Anthropic batch, Gemini flex/priority, ...)


def test_every_overlay_entry_has_a_source_and_a_date() -> None:
    for key, entry in load_overlay()["models"].items():
        assert entry.get("source") and entry.get("date"), key
