"""Import LiteLLM's ``model_prices_and_context_window.json`` (per-token float prices)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping

from ..errors import PriceFileError
from .model_price import MAX_PRICE, PER_MILLION, BucketPrices, ModelPrice, out_of_range, to_decimal

_KNOWN_KEYS = ("input_cost_per_token", "output_cost_per_token", "litellm_provider", "max_input_tokens", "mode")


def is_litellm_format(data: Any) -> bool:
    if not isinstance(data, Mapping) or "models" in data:
        return False
    entries = [v for k, v in data.items() if k != "sample_spec" and isinstance(v, Mapping)]
    return bool(entries) and any(any(k in e for k in _KNOWN_KEYS) for e in entries[:50])


def _per_million(entry: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    v = entry.get(key)
    # "(USD per token)" after the key: a message reading "…_per_token: 'abc'" would be masked as a
    # secret by the CLI's redaction (a "token: value" pair), hiding the bad value
    if v is None:
        return None
    label = f"{where}.{key} (USD per token)"
    d = to_decimal(v, label) * PER_MILLION
    if d > MAX_PRICE:
        raise PriceFileError(f"{label}: {out_of_range(repr(v))}")
    return d


def _first(*values: Decimal | None) -> Decimal:
    """The first value that is given: an explicit 0 is a price (free), only a missing one falls back."""
    for v in values:
        if v is not None:
            return v
    raise ValueError("no price given")  # pragma: no cover - the last value is always a known price


def parse_litellm(data: Mapping[str, Any], *, source: str) -> Any:
    from .catalog import PriceCatalog

    if not isinstance(data, Mapping):
        raise PriceFileError(f"{source}: expected a JSON object of model -> prices")
    from .merge import PriceLayer

    prices = []
    for model, entry in data.items():
        if model == "sample_spec" or not isinstance(entry, Mapping):
            continue
        where = f"{source}: {model}"
        i = _per_million(entry, "input_cost_per_token", where)
        o = _per_million(entry, "output_cost_per_token", where)
        if i is None or o is None:
            continue  # image / audio / embedding-only entries: nothing to price per token
        cr = _per_million(entry, "cache_read_input_token_cost", where)
        cw = _per_million(entry, "cache_creation_input_token_cost", where)
        cw1h = _per_million(entry, "cache_creation_input_token_cost_above_1hr", where)
        base = BucketPrices(input=i, output=o, cache_read=_first(cr, i),
                            cache_write_5m=_first(cw, i), cache_write_1h=_first(cw1h, cw, i))
        long = None
        threshold = None
        li = _per_million(entry, "input_cost_per_token_above_200k_tokens", where)
        if li is not None:
            threshold = 200_000
            lo_given = _per_million(entry, "output_cost_per_token_above_200k_tokens", where)
            lo = _first(lo_given, o)
            lcr = _per_million(entry, "cache_read_input_token_cost_above_200k_tokens", where)
            lcw = _per_million(entry, "cache_creation_input_token_cost_above_200k_tokens", where)
            long = BucketPrices(input=li, output=lo, cache_read=_first(lcr, base.cache_read),
                                cache_write_5m=_first(lcw, base.cache_write_5m), cache_write_1h=base.cache_write_1h)
        # What the entry gives, in our format: merged on top of a price the catalog has (see .merge).
        given = _given({"input": i, "output": o, "cache_read": cr, "cache_write_5m": cw, "cache_write_1h": cw1h})
        if long is not None:
            given["long_context"] = {"threshold": threshold, **_given({"input": li, "output": lo_given, "cache_read": lcr,
                                                                       "cache_write_5m": lcw})}  # fmt: skip
        tiers: dict[str, BucketPrices] = {}
        for tier, suffix in (("flex", "_flex"), ("priority", "_priority"), ("batch", "_batches")):
            ti = _per_million(entry, "input_cost_per_token" + suffix, where)
            to = _per_million(entry, "output_cost_per_token" + suffix, where)
            if ti is not None and to is not None:
                tcr = _per_million(entry, "cache_read_input_token_cost" + suffix, where)
                tiers[tier] = BucketPrices(input=ti, output=to, cache_read=_first(tcr, ti),
                                           cache_write_5m=ti, cache_write_1h=ti)
                given.setdefault("service_tiers", {})[tier] = _given({"input": ti, "output": to, "cache_read": tcr})
        mi = entry.get("max_input_tokens")
        mo = entry.get("max_output_tokens")
        if isinstance(mi, int) and not isinstance(mi, bool):
            given["context_window"] = mi
        if isinstance(mo, int) and not isinstance(mo, bool) and mo > 0:
            given["max_output"] = mo
        # no "provider": LiteLLM's provider names ("gemini", "vertex_ai-language-models") are not the
        # catalog's; merged on top, the catalog's provider stays
        layer = PriceLayer(given, where, "litellm", f"{source} (litellm)")
        prices.append((
            ModelPrice(
                model=str(model),
                provider=str(entry.get("litellm_provider") or "unknown"),
                base=base,
                long_context_threshold=threshold,
                long_context=long,
                tiers=tiers,
                context_window=mi if isinstance(mi, int) else None,
                max_output=mo if isinstance(mo, int) and not isinstance(mo, bool) and mo > 0 else None,
                source=f"litellm: {source}",
                origin="litellm",
            ),
            layer,
        ))  # fmt: skip
    if not prices:
        raise PriceFileError(f"{source}: no model with per-token input and output prices found")
    return PriceCatalog._of_layers(prices)


def _given(values: Mapping[str, Decimal | None]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items() if v is not None}
