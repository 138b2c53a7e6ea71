"""One model's prices and the arithmetic that turns a :class:`Usage` into dollars."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Context, Decimal
from typing import Any, Mapping

from ..errors import PriceFileError
from ..usage import Usage

__all__ = ["BucketPrices", "ModelPrice", "PER_MILLION"]

PER_MILLION = Decimal(1_000_000)
_BUCKETS = ("input", "cache_read", "cache_write_5m", "cache_write_1h", "output")

#: Service tiers that do not apply above a model's long-context threshold, by provider: such a
#: request is billed at the STANDARD long-context price (not long context x the tier's factor).
#: OpenAI's priority-processing price list marks every model "excludes long context"
#: (https://openai.com/api-priority-processing/).
STANDARD_ABOVE_LONG_CONTEXT: Mapping[str, frozenset[str]] = {"openai": frozenset({"priority"})}
_POW10 = [10**i for i in range(128)]  # grown at construction if a price table spans more exponents
# Our own context for the one Decimal step of a cost: exact whatever the caller's decimal context is,
# and no context lookup per operation (decimal fetches the current context from a ContextVar).
_EXACT = Context(prec=60)


def _divisor(e: int) -> Decimal:
    """The Decimal 1000000E−e (value 10^(6−e)). For an integer n, ``n / _divisor(e)`` equals
    ``(n × 10^e) / 1000000`` in value and digits: Decimal division returns the exact quotient with
    the exponent nearest the ideal one, exp(dividend) − exp(divisor), which is e in both forms."""
    return Decimal((0, (1, 0, 0, 0, 0, 0, 0), -e))


_divide = _EXACT.divide
_add = _EXACT.add


def _coefficient_exponent(d: Decimal) -> tuple[int, int]:
    _, digits, exponent = d.as_tuple()
    return int("".join(map(str, digits)) or 0), int(exponent)


#: Limits on the prices we accept, checked at load: a price with tens of thousands of decimal
#: places ("1e-60000") made catalog construction run for minutes. Real prices have at most a few.
MAX_DECIMAL_PLACES = 30
MAX_PRICE = Decimal(1_000_000)  # USD per 1M tokens (the dearest model costs hundreds)


def out_of_range(value: Any) -> str:
    """The one wording of the limits, for a price as written and for a price per 1M tokens."""
    return (
        f"price {value} is out of range: a price has at most {MAX_DECIMAL_PLACES} decimal places "
        f"and is at most {MAX_PRICE:,} USD per 1M tokens"
    )


def _in_range(d: Decimal, limit: Decimal) -> bool:
    exponent = d.as_tuple().exponent
    return isinstance(exponent, int) and -MAX_DECIMAL_PLACES <= exponent <= 6 and d <= limit


def to_decimal(value: Any, where: str) -> Decimal:
    """Parse a price. Strings and ints are exact; floats go through their shortest repr. Absurd
    magnitudes and exponents are refused (see :data:`MAX_DECIMAL_PLACES`)."""
    if isinstance(value, bool) or value is None:
        raise PriceFileError(f"{where}: expected a price, got {value!r}")
    if isinstance(value, str) and len(value) > 100:
        raise PriceFileError(f"{where}: a price of {len(value)} characters is not a price")
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except Exception:  # decimal.InvalidOperation, TypeError
        raise PriceFileError(f"{where}: {value!r} is not a number") from None
    if not d.is_finite() or d < 0:
        raise PriceFileError(f"{where}: price must be a finite number >= 0, got {value!r}")
    if not _in_range(d, MAX_PRICE):  # the value as written (per 1M tokens, per token, a multiplier)
        raise PriceFileError(f"{where}: {out_of_range(repr(value))}")
    return d


@dataclass(frozen=True, slots=True)
class BucketPrices:
    """USD per 1M tokens for each bucket, and ``request``: a fee in USD per request (Perplexity's
    Sonar models charge one; 0 for most models)."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    request: Decimal = Decimal(0)
    #: Each price as (integer coefficient, decimal exponent), for :meth:`cost`'s integer arithmetic.
    _exact: tuple[int, ...] = field(init=False, repr=False, compare=False)
    #: The usual requests' coefficients brought to one exponent e, with the divisor of their sum:
    #: (input, output, divisor) without cache tokens, (input, output, cache read, divisor) with
    #: cache reads only (see :func:`_divisor`).
    _plain: tuple[Any, ...] = field(init=False, repr=False, compare=False)
    _with_read: tuple[Any, ...] = field(init=False, repr=False, compare=False)
    #: The per-request fee, or None when there is none (the common case: one identity check per call).
    _fee: Decimal | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fee = self.request
        if not isinstance(fee, Decimal) or not fee.is_finite() or fee < 0 or not _in_range(fee, MAX_PRICE):
            raise PriceFileError(f"price 'request' must be a Decimal USD per request in range, got {fee!r}")
        object.__setattr__(self, "_fee", fee.copy_abs() if fee else None)
        for b in _BUCKETS:
            value = getattr(self, b)
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise PriceFileError(f"price {b!r} must be a finite Decimal >= 0, got {value!r}")
            if not _in_range(value, MAX_PRICE):
                raise PriceFileError(f"{b}: {out_of_range(value)}")
            if value.is_zero() and value.is_signed():
                object.__setattr__(self, b, value.copy_abs())  # -0 is 0: no "-0.00" costs
        ci, ei = _coefficient_exponent(self.input)
        co, eo = _coefficient_exponent(self.output)
        cr, er = _coefficient_exponent(self.cache_read)
        c5, e5 = _coefficient_exponent(self.cache_write_5m)
        c1, e1 = _coefficient_exponent(self.cache_write_1h)
        spread = max(ei, eo, er, e5, e1) - min(ei, eo, er, e5, e1)
        while len(_POW10) <= spread:  # at construction, never per call
            _POW10.append(10 ** len(_POW10))
        e = min(ei, eo)
        object.__setattr__(self, "_exact", (ci, ei, co, eo, cr, er, c5, e5, c1, e1, e))
        object.__setattr__(self, "_plain", (ci * 10 ** (ei - e), co * 10 ** (eo - e), _divisor(e)))
        e = min(ei, eo, er)
        object.__setattr__(
            self, "_with_read", (ci * 10 ** (ei - e), co * 10 ** (eo - e), cr * 10 ** (er - e), _divisor(e))
        )

    @classmethod
    def parse(cls, data: Mapping[str, Any], where: str, fallback: BucketPrices | None = None) -> BucketPrices:
        if not isinstance(data, Mapping):
            raise PriceFileError(f"{where}: expected an object of prices, got {type(data).__name__}")
        values: dict[str, Decimal] = {}
        for b in ("input", "output"):
            if data.get(b) is None and fallback is None:
                raise PriceFileError(f"{where}: missing required price {b!r}")
        for b in _BUCKETS:
            raw = data.get(b)
            if raw is not None:
                values[b] = to_decimal(raw, f"{where}.{b}")
            elif fallback is not None:
                values[b] = getattr(fallback, b)
            else:
                values[b] = values["input"]  # no separate cache price: billed as input
        fee = data.get("request")
        if fee is not None:
            values["request"] = to_decimal(fee, f"{where}.request")
        elif fallback is not None:
            values["request"] = fallback.request
        try:
            return cls(**values)
        except PriceFileError as e:  # out of range: say where
            raise PriceFileError(f"{where}: {e}") from None

    def scaled(self, factor: Decimal) -> BucketPrices:
        """The token prices times ``factor`` (a service tier's multiplier); the request fee stays."""
        return BucketPrices(**{b: getattr(self, b) * factor for b in _BUCKETS}, request=self.request)

    def cost(self, usage: Usage) -> Decimal:
        """Exactly ``Σ tokens × price / 1e6``: the same Decimal (value and digits) as
        ``(usage.input * self.input + usage.output * self.output [+ cache terms]) / PER_MILLION``
        wherever that formula is exact (up to 28 significant digits, the default context's
        precision; beyond it the formula rounds and this stays exact up to 60 digits). The sum is
        taken on integers and a single Decimal division makes the result: Decimal operations are
        costly on the hot path (each one runs code the frameworks never touch)."""
        # A Decimal sum has the smallest exponent e of its terms (input and output always take
        # part, a cache term when it has tokens): the sum is n × 10^e.
        read = usage.cache_read
        if usage.cache_write_5m or usage.cache_write_1h:
            n, divisor = self._with_writes(usage)
        elif read:
            ci, co, cr, divisor = self._with_read
            n = usage.input * ci + usage.output * co + read * cr
        else:
            ci, co, divisor = self._plain
            n = usage.input * ci + usage.output * co
        if self._fee is not None:
            return _add(_divide(n, divisor), self._fee)
        return _divide(n, divisor)  # the context converts the integer exactly: no Decimal() call

    def _with_writes(self, usage: Usage) -> tuple[int, Decimal]:
        """``(n, divisor)`` of a request with cache writes (any bucket may take part)."""
        ci, ei, co, eo, cr, er, c5, e5, c1, e1, e = self._exact
        read = usage.cache_read
        w5 = usage.cache_write_5m
        w1 = usage.cache_write_1h
        if read and er < e:
            e = er
        if w5 and e5 < e:
            e = e5
        if w1 and e1 < e:
            e = e1
        n = usage.input * ci * _POW10[ei - e] + usage.output * co * _POW10[eo - e]
        if read:
            n += read * cr * _POW10[er - e]
        if w5:
            n += w5 * c5 * _POW10[e5 - e]
        if w1:
            n += w1 * c1 * _POW10[e1 - e]
        return n, _divisor(e)

    def costs(self, usage: Usage) -> dict[str, Decimal]:
        """Each bucket's exact cost (``tokens × price / 1e6``), plus ``reasoning``: the part of
        ``output`` that was reasoning, at the output price (a subset, not added again), and
        ``request`` (the per-request fee) when the model has one. The buckets and the fee sum exactly
        to :meth:`cost`. Not on the hot path: for exporters that show a breakdown."""
        out = {b: _divide(getattr(usage, b) * getattr(self, b), PER_MILLION) for b in _BUCKETS}
        out["reasoning"] = _divide(usage.reasoning * self.output, PER_MILLION)
        if self._fee is not None:
            out["request"] = self._fee
        return out

    def as_dict(self) -> dict[str, str]:
        out = {b: str(getattr(self, b)) for b in _BUCKETS}
        if self._fee is not None:
            out["request"] = str(self._fee)
        return out


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Prices of one model family, as published on ``effective_date`` by ``source``."""

    model: str
    provider: str
    base: BucketPrices
    #: Above this many prompt tokens (input + cache reads + cache writes) the WHOLE request
    #: is billed at ``long_context`` rates, output included.
    long_context_threshold: int | None = None
    long_context: BucketPrices | None = None
    #: Service tier name -> prices (batch, flex, priority), already multiplied out.
    tiers: Mapping[str, BucketPrices] = field(default_factory=dict)
    #: Service tier name -> its prices above the long-context threshold.
    tier_long_context: Mapping[str, BucketPrices] = field(default_factory=dict)
    context_window: int | None = None
    #: The most output tokens one call can produce (budgets reserve it when a call sets no max_tokens).
    max_output: int | None = None
    effective_date: str | None = None
    source: str | None = None
    aliases: tuple[str, ...] = ()
    #: Which price data priced it: "genai-prices 0.2.3", "genai-prices 0.2.3 + overlay 2026-11-23",
    #: "overlay 2026-11-23", "user", "litellm". Recorded on every event (``CostEvent.price_source``).
    origin: str | None = None
    #: UTC epoch seconds at which a newer dated price of this model takes over (None: no change known).
    until: float | None = None
    #: Server-side tool name -> USD per request (``{"web_search": Decimal("0.01")}``), billed on top
    #: of the tokens whatever the service tier.
    tool_fees: Mapping[str, Decimal] = field(default_factory=dict)

    def prices_for(self, usage: Usage, service_tier: str | None = None) -> BucketPrices:
        if self.long_context is None and not service_tier:
            return self.base  # the common case, on every model call
        long = self.long_context is not None and usage.prompt_tokens > self.long_context_threshold  # type: ignore[operator]
        if service_tier and service_tier in self.tiers:
            if long:
                return self.tier_long_context.get(service_tier) or self.long_context  # type: ignore[return-value]
            return self.tiers[service_tier]
        return self.long_context if long else self.base  # type: ignore[return-value]

    def cost(self, usage: Usage, service_tier: str | None = None) -> Decimal:
        """Exact USD cost of one request with this usage."""
        if self.long_context is None and not service_tier:  # every model call: skip prices_for's call
            return self.base.cost(usage)
        return self.prices_for(usage, service_tier).cost(usage)

    def tool_cost(self, requests: Mapping[str, int]) -> tuple[Decimal, tuple[str, ...]]:
        """``(USD, tools without a fee)`` of a call's server-side tool ``requests`` (``{"web_search": 3}``)."""
        cost = Decimal(0)
        unpriced = []
        for tool, n in requests.items():
            if type(n) is not int or n <= 0:
                continue
            fee = self.tool_fees.get(tool)
            if fee is None:
                unpriced.append(tool)
            else:
                cost = _add(cost, fee * n)
        return cost, tuple(unpriced)

    def with_model(self, model: str) -> ModelPrice:
        return replace(self, model=model)

    def with_origin(self, origin: str, until: float | None = None) -> ModelPrice:
        return replace(self, origin=origin, until=until)

    def as_entry(self) -> dict[str, Any]:
        """Our JSON price format (USD per 1M tokens as strings), every tier written out."""
        return {
            "model": self.model,
            "provider": self.provider,
            **self.base.as_dict(),
            "long_context": None
            if self.long_context is None
            else {"threshold": self.long_context_threshold, **self.long_context.as_dict()},
            "service_tiers": {k: v.as_dict() for k, v in self.tiers.items()},
            **({"tool_fees": {k: str(v) for k, v in self.tool_fees.items()}} if self.tool_fees else {}),
            "context_window": self.context_window,
            "max_output": self.max_output,
            "effective_date": self.effective_date,
            "source": self.source,
            "origin": self.origin,
        }

    @classmethod
    def parse(cls, model: str, data: Mapping[str, Any], where: str) -> ModelPrice:
        if not isinstance(data, Mapping):
            raise PriceFileError(f"{where}: expected an object, got {type(data).__name__}")
        base = BucketPrices.parse(data, where)
        threshold = None
        long = None
        lc = data.get("long_context")
        if lc:
            if not isinstance(lc, Mapping):
                raise PriceFileError(f"{where}.long_context: expected an object")
            threshold = lc.get("threshold")
            if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold <= 0:
                raise PriceFileError(f"{where}.long_context.threshold must be a positive integer, got {threshold!r}")
            long = BucketPrices.parse(lc, f"{where}.long_context", fallback=base)
        tiers: dict[str, BucketPrices] = {}
        tier_long: dict[str, BucketPrices] = {}
        st = data.get("service_tiers") or {}
        if not isinstance(st, Mapping):
            raise PriceFileError(f"{where}.service_tiers: expected an object")
        for name, spec in st.items():
            w = f"{where}.service_tiers.{name}"
            if spec is None:  # no such tier (merged on top of a catalog price: removes it)
                continue
            if isinstance(spec, Mapping):
                # Explicit per-bucket prices, optionally with their own long-context prices.
                tiers[name] = BucketPrices.parse(spec, w, fallback=base)
                if spec.get("long_context") and long is not None:
                    tier_long[name] = BucketPrices.parse(spec["long_context"], f"{w}.long_context", fallback=long)
                elif long is not None:
                    tier_long[name] = long
            else:
                # A multiplier applies to every bucket, long-context prices included.
                factor = to_decimal(spec, w)
                tiers[name] = base.scaled(factor)
                if long is not None:
                    tier_long[name] = long.scaled(factor)
        if long is not None:
            for name in STANDARD_ABOVE_LONG_CONTEXT.get(str(data.get("provider") or ""), ()):
                if name in tiers:
                    tier_long[name] = long  # the tier does not apply above the threshold: standard long context
        cw = data.get("context_window")
        mo = data.get("max_output")
        if mo is not None and (not isinstance(mo, int) or isinstance(mo, bool) or mo <= 0):
            raise PriceFileError(f"{where}.max_output must be a positive integer, got {mo!r}")
        aliases = data.get("aliases") or ()
        if not isinstance(aliases, (list, tuple)) or not all(isinstance(a, str) for a in aliases):
            raise PriceFileError(f"{where}.aliases: expected a list of model ids")
        provider = data.get("provider") or "unknown"
        fees = data.get("tool_fees") or {}
        if not isinstance(fees, Mapping) or not all(isinstance(k, str) for k in fees):
            raise PriceFileError(f"{where}.tool_fees: expected an object of USD per request by tool")
        tool_fees = {k: _fee(v, f"{where}.tool_fees.{k}") for k, v in fees.items() if v is not None}  # null: no fee
        return cls(
            model=model,
            provider=str(provider),
            base=base,
            long_context_threshold=threshold,
            long_context=long,
            tiers=tiers,
            tier_long_context=tier_long,
            context_window=cw if isinstance(cw, int) else None,
            max_output=mo,
            effective_date=data.get("effective_date"),
            source=data.get("source"),
            aliases=tuple(aliases),
            tool_fees=tool_fees,
        )


def _fee(value: Any, where: str) -> Decimal:
    fee = to_decimal(value, where)
    if not _in_range(fee, MAX_PRICE):
        raise PriceFileError(f"{where}: {value!r} is out of range: USD per request must be at most {MAX_PRICE:,}")
    return fee
