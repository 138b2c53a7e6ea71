"""A price entry of yours merged on top of the price the catalog already has for that model.

A user entry (``AGENTCOST_PRICES``, ``catalog.merged({...})``, ``--file``, a LiteLLM import merged
on top) for a model the catalog knows replaces the fields it gives and keeps the others:

* ``input``, ``output``, ``cache_read``, ``cache_write_5m``, ``cache_write_1h``, ``request``,
  ``provider``, ``context_window``, ``max_output``, ``effective_date``: yours when given, else the
  price below's. ``aliases`` are added to the price below's.
* Prices you do not give that DERIVE from a price you change keep their RATIO to it, bucket by
  bucket (they are stored as absolute prices, and keeping a stale absolute price would be wrong):
  cache read and cache write prices keep their ratio to the input price (gpt-4o's cache read stays
  half the input price when you change the input price); each service tier (batch, flex, priority…)
  and the long-context prices keep their ratio to the standard price of the same bucket (priority
  stays 1.7x your input and output prices); a tier's long-context prices keep their ratio to the
  long-context prices. The per-request fee (``request``) follows the same rule: a tier (or the
  long-context prices) that had the standard fee gets your new fee, one whose fee differed keeps
  its ratio to it. A derived price is exact when the ratio divides exactly (``0.27 x 2 = 0.54``);
  when it does not, it is rounded to 12 significant digits (``0.0777777777778``; never more than
  30 decimal places, the most a price may have), so costs do not print 30-digit tails. Where the
  price below is 0 there is no ratio: the derived price is your price of that bucket.
* Time-of-day prices (DeepSeek's off-peak hours) do not apply to a merged price: your entry is
  merged on top of the model's price outside any window and applies at every hour of the day (the
  prices you give are what you pay; the prices you do not give keep their ratio as above). It is
  valid until the model's next dated price change, not until a window's end.
* ``long_context``: an object replaces the fields it gives (the ``threshold`` included) on top of
  the kept long-context prices; ``null`` removes long-context pricing.
* ``service_tiers``: merged tier by tier. A multiplier is applied to your standard prices; an object
  replaces the fields it gives on top of the kept tier (or of your standard prices for a new tier);
  ``null`` removes the tier.
* ``tool_fees`` (USD per server-side tool request): merged tool by tool. Your fee replaces that
  tool's fee, the other tools keep theirs; a ``null`` fee removes that tool's fee (its requests are
  then listed as unpriced), and ``"tool_fees": null`` removes them all.
* The merged price's ``origin`` (``CostEvent.price_source``) is the price below's with ``+ user``
  (``genai-prices 0.2.3 + user``; ``+ litellm`` for a LiteLLM import), and its ``source`` names the
  fields of yours that were applied and where they came from.

A model the catalog does not know is priced with your entry alone (cache prices default to the
input price, no tiers, no long context, the tool fees you give).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Context, Decimal, Inexact
from typing import Any

from ..errors import PriceFileError
from .model_price import (
    _BUCKETS,
    MAX_DECIMAL_PLACES,
    STANDARD_ABOVE_LONG_CONTEXT,
    BucketPrices,
    ModelPrice,
    _fee,
    to_decimal,
)

__all__ = ["PriceLayer"]

_CTX = Context(prec=60)
#: Significant digits of a derived price whose ratio does not divide exactly.
ROUNDED_DIGITS = 12
_ROUND = Context(prec=ROUNDED_DIGITS)
_PLACES = Decimal(1).scaleb(-MAX_DECIMAL_PLACES)
_MISSING: Any = object()
_CACHE = ("cache_read", "cache_write_5m", "cache_write_1h")


def _scale(value: Decimal, old_ref: Decimal, new_ref: Decimal) -> Decimal:
    """``value`` keeping its ratio to ``old_ref`` now that the reference is ``new_ref``."""
    if old_ref == new_ref:
        return value
    if not old_ref:
        return new_ref  # no ratio to keep: billed as the reference price
    ctx = _CTX.copy()  # its own flags: was the ratio exact?
    out = ctx.divide(ctx.multiply(value, new_ref), old_ref)
    if ctx.flags[Inexact]:
        out = _ROUND.plus(out)
    exponent = out.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
        out = out.quantize(_PLACES, context=_CTX)
    plain = out.normalize(_CTX)  # 1.0 -> 1, but 100 stays 100 (not 1E+2)
    return plain if plain.as_tuple().exponent <= 0 else out.quantize(Decimal(1), context=_CTX)


def _rescaled(prices: BucketPrices, old_ref: BucketPrices, new_ref: BucketPrices, what: str) -> BucketPrices:
    """``prices`` (``what``: which prices, for an error) keeping each bucket's ratio to ``old_ref``'s
    same bucket, against ``new_ref``; the request fee keeps its ratio to ``old_ref``'s fee."""
    if old_ref == new_ref:
        return prices
    values = {b: _scale(getattr(prices, b), getattr(old_ref, b), getattr(new_ref, b)) for b in _BUCKETS}
    try:
        return BucketPrices(**values, request=_scale(prices.request, old_ref.request, new_ref.request))
    except PriceFileError as e:
        raise PriceFileError(f"{what} (kept at its ratio to the prices you changed): {e}") from None


@dataclass(frozen=True)
class PriceLayer:
    """One user entry as given (our JSON price format, only the fields the user gave), to merge on
    top of the price below it; ``origin`` (``user``, ``litellm``) and ``source`` (the file or dict it
    came from) say where it came from."""

    given: Mapping[str, Any]
    where: str
    origin: str
    source: str

    def apply(self, below: ModelPrice) -> ModelPrice:
        """``below`` with this entry on top (see the module docstring for what is kept and how)."""
        try:
            return self._apply(below)
        except PriceFileError as e:
            raise PriceFileError(f"{self.where} on top of {below.origin} {below.model}: {e}") from None

    def _apply(self, below: ModelPrice) -> ModelPrice:
        g = self.given
        old = below.base
        new_input = old.input if g.get("input") is None else to_decimal(g["input"], f"{self.where}.input")
        fallback = replace_buckets(old, **{b: _scale(getattr(old, b), old.input, new_input) for b in _CACHE})
        base = BucketPrices.parse(g, self.where, fallback=fallback)
        threshold, long = self._long_context(below, base)
        tiers, tier_long = self._tiers(below, base, long)
        provider = str(g.get("provider") or below.provider)
        if long is not None:
            for name in STANDARD_ABOVE_LONG_CONTEXT.get(provider, ()):
                if name in tiers:
                    tier_long[name] = long  # the tier does not apply above the threshold
        aliases = tuple(dict.fromkeys((*below.aliases, *(g.get("aliases") or ()))))
        fields = ", ".join(k for k, v in g.items() if _applies(k, v))
        cw = g.get("context_window")
        return replace(
            below,
            provider=provider,
            base=base,
            long_context_threshold=threshold,
            long_context=long,
            tiers=tiers,
            tier_long_context=tier_long,
            context_window=cw if isinstance(cw, int) and not isinstance(cw, bool) else below.context_window,
            max_output=g.get("max_output") or below.max_output,
            effective_date=g.get("effective_date") or below.effective_date,
            source=f"{below.source}; {fields} from {g.get('source') or self.source}",
            aliases=aliases,
            origin=f"{below.origin or 'catalog'} + {self.origin}",
            tool_fees=self._tool_fees(below),
        )

    def _tool_fees(self, below: ModelPrice) -> Mapping[str, Decimal]:
        fees = self.given.get("tool_fees", _MISSING)
        if fees is _MISSING:
            return below.tool_fees
        if fees is None:
            return {}  # removed
        if not isinstance(fees, Mapping):
            raise PriceFileError(f"{self.where}.tool_fees: expected an object of USD per request by tool")
        out = dict(below.tool_fees)
        for tool, fee in fees.items():
            if fee is None:
                out.pop(tool, None)
            else:
                out[tool] = _fee(fee, f"{self.where}.tool_fees.{tool}")
        return out

    def _long_context(self, below: ModelPrice, base: BucketPrices) -> tuple[int | None, BucketPrices | None]:
        lc = self.given.get("long_context", _MISSING)
        kept = None if below.long_context is None else _rescaled(below.long_context, below.base, base, "long_context")
        if lc is None:
            return None, None  # removed
        if lc is _MISSING or not lc:
            return (below.long_context_threshold, kept) if kept is not None else (None, None)
        threshold = lc.get("threshold", below.long_context_threshold)
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold <= 0:
            raise PriceFileError(f"{self.where}.long_context.threshold must be a positive integer, got {threshold!r}")
        return threshold, BucketPrices.parse(lc, f"{self.where}.long_context", fallback=kept or base)

    def _tiers(
        self, below: ModelPrice, base: BucketPrices, long: BucketPrices | None
    ) -> tuple[dict[str, BucketPrices], dict[str, BucketPrices]]:
        given = self.given.get("service_tiers") or {}
        tiers: dict[str, BucketPrices] = {}
        tier_long: dict[str, BucketPrices] = {}
        for name, prices in below.tiers.items():  # kept tiers: their ratio to the standard prices
            tiers[name] = _rescaled(prices, below.base, base, f"service_tiers.{name}")
            if long is not None:
                tier_long[name] = self._kept_tier_long(below, name, tiers[name], base, long)
        for name, spec in given.items():
            where = f"{self.where}.service_tiers.{name}"
            if spec is None:  # removed
                tiers.pop(name, None)
                tier_long.pop(name, None)
            elif isinstance(spec, Mapping):
                tiers[name] = BucketPrices.parse(spec, where, fallback=tiers.get(name, base))
                if long is not None:
                    kept = tier_long.get(name, long)
                    own = spec.get("long_context")
                    tier_long[name] = BucketPrices.parse(own, f"{where}.long_context", fallback=kept) if own else kept
            else:
                factor = to_decimal(spec, where)
                tiers[name] = base.scaled(factor)
                if long is not None:
                    tier_long[name] = long.scaled(factor)
        return tiers, tier_long

    @staticmethod
    def _kept_tier_long(
        below: ModelPrice, name: str, tier: BucketPrices, base: BucketPrices, long: BucketPrices
    ) -> BucketPrices:
        """A kept tier's prices above the long-context threshold."""
        if below.long_context is not None:  # its ratio to the long-context prices below
            tier_long = below.tier_long_context.get(name) or below.long_context
            return _rescaled(tier_long, below.long_context, long, f"service_tiers.{name}.long_context")
        # long context is new: the tier's ratio to the standard prices applies to it
        return _rescaled(long, base, tier, f"service_tiers.{name}.long_context")


def _applies(key: str, value: Any) -> bool:
    """Whether field ``key`` of a user entry, given as ``value``, changes the merged price."""
    if key in ("long_context", "service_tiers", "tool_fees"):
        return value is None or bool(value)  # null removes; an empty object changes nothing
    if key == "context_window":
        return isinstance(value, int) and not isinstance(value, bool)
    if key in ("provider", "max_output", "effective_date"):
        return bool(value)
    return (key in _BUCKETS or key == "request") and value is not None


def replace_buckets(prices: BucketPrices, **values: Decimal) -> BucketPrices:
    """``prices`` with some buckets replaced (the request fee kept unless given)."""
    current = {b: getattr(prices, b) for b in _BUCKETS}
    current["request"] = prices.request
    return BucketPrices(**{**current, **values})
