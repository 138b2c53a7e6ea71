"""pydantic's ``genai-prices`` data compiled, once at load, into our exact :class:`ModelPrice` objects.

``genai-prices`` (MIT, about 2,300 models of 47 providers, released about weekly) keeps each
model's token prices, cache read / write prices, long-context tiers, service tiers (batch, flex,
priority) and dated price changes. :meth:`GenaiPrices.build` compiles every model with per-token
prices into our price entries, one per date on which its prices change (:func:`compile_model`); :class:`GenaiPrices` resolves a model id
(``azure/gpt-4o``, ``us.anthropic.claude-…-v1:0``, ``ft:gpt-4o-mini-…:org::id``) with
genai-prices' own matching rules plus the platform prefixes frameworks write.

Token prices, per-request fees and web-search fees (``web_searches_kcount``, as
``tool_fees["web_search"]`` per search) are compiled; audio seconds are not (a call is priced from
its tokens). Time-of-day prices (DeepSeek's peak and off-peak hours) apply at the
call's time: :func:`time_of_day_window` gives the daily window a moment falls in, and the price of
that window is valid until the window ends (``ModelPrice.until``), when the next call re-resolves it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from copy import copy
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ..errors import PriceFileError
from .model_price import ModelPrice

__all__ = [
    "PLATFORM_PREFIXES",
    "GenaiPrices",
    "change_dates",
    "compile_model",
    "entry_at",
    "genai_version",
    "load_providers",
    "time_of_day_window",
]

_KEYS = {"input_mtok": "input", "output_mtok": "output", "cache_read_mtok": "cache_read",
         "cache_write_mtok": "cache_write_5m", "cache_write_1h_mtok": "cache_write_1h"}  # fmt: skip
#: Our service tier name → genai-prices' price context (the other tiers are its ``service_tier`` values).
_TIER_CONTEXTS = {"batch": {"processing": "batch"}}

#: A framework's platform prefix → genai-prices' provider id.
PLATFORM_PREFIXES = {
    "bedrock": "aws", "bedrock_converse": "aws", "aws": "aws", "amazon": "aws",
    "vertex_ai": "google", "vertex": "google", "vertexai": "google", "google": "google", "gemini": "google",
    "google_genai": "google", "google_vertexai": "google",
    "azure": "azure", "azure_ai": "azure", "azure_openai": "azure",
    "openrouter": "openrouter", "together_ai": "together", "together": "together", "groq": "groq",
    "fireworks_ai": "fireworks", "fireworks": "fireworks", "openai": "openai", "anthropic": "anthropic",
    "xai": "x-ai", "x-ai": "x-ai", "mistral": "mistral", "mistralai": "mistral", "deepseek": "deepseek",
    "moonshot": "moonshotai", "moonshotai": "moonshotai", "cohere": "cohere", "cerebras": "cerebras",
    "perplexity": "perplexity", "novita": "novita", "databricks": "databricks",
}  # fmt: skip
_BEDROCK_ID = re.compile(
    r"^(?:(?:us|eu|apac|global|us-gov|jp|au|ca|regional)\.)?"
    r"(?:anthropic|meta|amazon|mistral|openai|deepseek|qwen|cohere|ai21|google|moonshotai|nvidia|zai|writer)\.[a-z0-9]"
)
#: Where a bare id is looked up before genai-prices' own provider guess (its model_match rules).
_HOME_ORDER = ("openai", "anthropic", "google", "x-ai", "mistral", "deepseek", "moonshotai", "aws")


def genai_version() -> str:
    from importlib.metadata import version

    return version("genai-prices")


def load_providers(raw: Any | None = None) -> list[Any]:
    """genai-prices' providers: the bundled data, or ``raw`` (its published ``data.json``: a list)."""
    if raw is None:
        from genai_prices.data import providers

        return list(providers)
    if not isinstance(raw, list) or not raw:
        raise PriceFileError("genai-prices data: expected a non-empty JSON array of providers")
    from genai_prices.types import _providers_from_raw  # the loader its own updater uses

    try:
        return list(_providers_from_raw(raw))
    except Exception as e:  # noqa: BLE001 - pydantic.ValidationError and friends: say it plainly
        raise PriceFileError(f"genai-prices data does not validate: {str(e)[:500]}") from None


def change_dates(info: Any) -> list[date]:
    """Every date on which one of the model's prices (standard or a variant) changes."""
    dates = set()
    conditions = [] if not isinstance(info.prices, list) else [c.constraint for c in info.prices]
    conditions += [v.constraint for v in info.price_variants or ()]
    for c in conditions:
        start = getattr(c, "start_date", None)
        if isinstance(start, date):
            dates.add(start)
    return sorted(dates)


def _tier_contexts(info: Any) -> dict[str, dict[str, str]]:
    out = dict(_TIER_CONTEXTS) if any(v.when.get("processing") == "batch" for v in info.price_variants or ()) else {}
    for v in info.price_variants or ():
        tier = v.when.get("service_tier")
        if tier and len(v.when) == 1:
            out[tier] = {"service_tier": tier}
    return out


def _as_entry(gp: Any) -> dict[str, Any] | None:
    """One genai-prices ModelPrice as our JSON price entry (USD per 1M tokens), or None when it
    has no per-token input and output price or tiers we cannot express (several thresholds)."""
    from genai_prices.types import TieredPrices

    values = {ours: getattr(gp, key, None) for key, ours in _KEYS.items()}
    if values["input"] is None:
        return None
    if values["output"] is None:
        values["output"] = Decimal(0)  # embeddings: input only (genai-prices charges 0 for output)
    base: dict[str, Any] = {}
    long: dict[str, Any] = {}
    thresholds = set()
    for ours, v in values.items():
        if v is None:
            continue
        if isinstance(v, TieredPrices):
            if len(v.tiers) != 1:
                return None
            thresholds.add(v.tiers[0].start)
            base[ours] = str(v.base)
            long[ours] = str(v.tiers[0].price)
        else:
            base[ours] = str(v)
    if len(thresholds) > 1:
        return None
    fee = getattr(gp, "requests_kcount", None)  # USD per 1,000 requests (Perplexity's Sonar models)
    if isinstance(fee, Decimal) and fee:
        base["request"] = str(fee / 1000)
    # genai-prices bills a token whose own price is missing as its parent: a cache read or write
    # as input, a 1h cache write as a cache write (leaf decomposition of its usage units).
    for b, parent in (("cache_read", "input"), ("cache_write_5m", "input"), ("cache_write_1h", "cache_write_5m")):
        if b not in base:
            base[b] = base[parent]
            if parent in long:
                long[b] = long[parent]
    if thresholds:
        base["long_context"] = {"threshold": thresholds.pop(), **long}
    return base


def _entry_at(info: Any, when: datetime) -> dict[str, Any] | None:
    prices = info.get_prices(when)
    entry = _as_entry(prices)
    if entry is None:
        return None
    tiers: dict[str, Any] = {}
    for name, context in _tier_contexts(info).items():
        tier = _as_entry(info.get_prices(when, context))
        if tier is not None and tier != entry:
            lc = tier.pop("long_context", None)
            if lc:
                tier["long_context"] = {k: v for k, v in lc.items() if k != "threshold"}
            tiers[name] = tier
    if tiers:
        entry["service_tiers"] = tiers
    searches = getattr(prices, "web_searches_kcount", None)  # USD per 1,000 searches
    if isinstance(searches, Decimal) and searches:
        entry["tool_fees"] = {"web_search": str(searches / 1000)}
    if info.context_window:
        entry["context_window"] = info.context_window
    return entry


@dataclass(frozen=True)
class Dated:
    """A model's prices from ``start`` (UTC epoch seconds; 0 = since ever) until the next change."""

    start: float
    entry: dict[str, Any]


def has_time_of_day_prices(info: Any) -> bool:
    return isinstance(info.prices, list) and any(hasattr(c.constraint, "start_time") for c in info.prices)


_DAY = 86_400


def _utc_seconds(t: Any) -> float:
    """Seconds after UTC midnight of a ``datetime.time`` (naive times are UTC)."""
    offset = t.utcoffset()
    s = t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6
    return (s - (offset.total_seconds() if offset is not None else 0)) % _DAY


def time_of_day_window(info: Any, when: float) -> tuple[float, float]:
    """(start, end) in UTC epoch seconds of the window of ``info``'s time-of-day prices that
    ``when`` falls in: between two consecutive daily boundaries (a window's start or end time)."""
    bounds = sorted(
        {_utc_seconds(t) for c in info.prices if hasattr(c.constraint, "start_time")
         for t in (c.constraint.start_time, c.constraint.end_time)}
    )  # fmt: skip
    day = when - when % _DAY
    of_day = when - day
    start = max((b for b in bounds if b <= of_day), default=bounds[-1] - _DAY)
    end = min((b for b in bounds if b > of_day), default=bounds[0] + _DAY)
    return day + start, day + end


def entry_at(info: Any, when: float) -> dict[str, Any] | None:
    """Our price entry of ``info`` at ``when`` (UTC epoch seconds), time-of-day prices included."""
    return _entry_at(info, datetime.fromtimestamp(when, UTC))


def compile_model(info: Any) -> list[Dated]:
    """Our price entries of one genai-prices model, one per date its prices change (oldest first).
    Time-of-day prices are left out here (the unconstrained price, which for DeepSeek is the
    off-peak one); :class:`~.base.BasePrices` applies them at the call's time."""
    if has_time_of_day_prices(info):
        info = copy(info)
        info.prices = [c for c in info.prices if not hasattr(c.constraint, "start_time")]
    moments = [datetime(1970, 1, 1, tzinfo=UTC)] + [
        datetime(d.year, d.month, d.day, tzinfo=UTC) for d in change_dates(info)
    ]
    out: list[Dated] = []
    for m in moments:
        entry = _entry_at(info, m)
        if entry is None or (out and out[-1].entry == entry):
            continue
        out.append(Dated(m.timestamp(), entry))
    return out


@dataclass
class GenaiPrices:
    """genai-prices' providers, compiled: ``(provider id, model id)`` → dated price entries."""

    providers: list[Any]
    origin: str
    #: (provider id, model id) → its dated entries, oldest first.
    entries: dict[tuple[str, str], list[Dated]] = field(default_factory=dict)
    #: (provider id, model id) → genai-prices' model, for the models with time-of-day prices.
    time_of_day: dict[tuple[str, str], Any] = field(default_factory=dict)
    _by_id: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, providers: Iterable[Any], *, origin: str) -> GenaiPrices:
        self = cls(list(providers), origin)
        for p in self.providers:
            self._by_id[p.id] = p
            for info in p.models:
                dated = compile_model(info)
                if dated:
                    self.entries[(p.id, info.id)] = dated
                    if has_time_of_day_prices(info):
                        self.time_of_day[(p.id, info.id)] = info
        return self

    def model_info(self, provider_id: str, model_id: str) -> Any | None:
        p = self._by_id.get(provider_id)
        return next((m for m in p.models if m.id == model_id), None) if p else None

    def _find(self, ref: str, provider_id: str | None) -> tuple[str, str] | None:
        if provider_id is not None:
            provider = self._by_id.get(provider_id)
            if provider is None:
                return None
            info = provider.find_model(ref, all_providers=self.providers)
            if info is None:
                return None
            # A fallback provider's model (Azure → OpenAI): priced at the provider that has it.
            owner = provider.id if any(m is info for m in provider.models) else _owner(self.providers, info)
            return (owner, info.id) if (owner, info.id) in self.entries else None
        for pid in _HOME_ORDER:
            found = self._find(ref, pid)
            if found:
                return found
        for provider in self.providers:
            if provider.model_match is not None and provider.model_match.is_match(ref):
                return self._find(ref, provider.id)
        return None

    def resolve(self, model: str) -> tuple[str, str] | None:
        """``(provider id, model id)`` of a model id as frameworks write it, or None."""
        ref = model.strip().lower()
        head, sep, rest = ref.partition("/")
        if sep and head in PLATFORM_PREFIXES:
            found = self._find(rest, PLATFORM_PREFIXES[head])
            if found:
                return found
            if head == "openrouter":
                return None
            ref = rest  # openai/gpt-oss-120b, anthropic/claude-…: the bare id below
        if _BEDROCK_ID.match(ref):
            found = self._find(ref, "aws")
            if found:
                return found
            plain = re.sub(
                r"-v\d+(?::\d+)?$", "", ref.split(".", 2)[-1] if ref.count(".") >= 2 else ref.split(".", 1)[-1]
            )
            ref = plain
        if ref.startswith("ft:"):
            return self._find(ref, "openai")
        found = self._find(ref, None)
        if found is None and "/" in ref:  # an open-weight model under its organisation: OpenRouter's id
            found = self._find(ref, "openrouter")
        return found


def _owner(providers: list[Any], info: Any) -> str | None:
    for p in providers:
        if any(m is info for m in p.models):
            return p.id
    return None


def price_of(
    model_id: str, provider: str, dated: Dated, *, origin: str, overlay: Mapping[str, Any] | None
) -> ModelPrice:
    """One dated entry as a :class:`ModelPrice`, with the overlay's fields on top."""
    entry: dict[str, Any] = {**dated.entry, "provider": provider, "source": f"{origin}: {provider}/{model_id}"}
    source = origin
    if overlay:
        entry = apply_overlay(entry, overlay)
        if overlay.get("corrects"):
            entry["source"] += f"; corrected by the overlay ({', '.join(overlay['corrects'])}): {overlay.get('source')}"
            source = f"{origin} + {overlay_origin(overlay)}"
    entry.setdefault(
        "effective_date", datetime.fromtimestamp(dated.start, UTC).date().isoformat() if dated.start else None
    )
    price = ModelPrice.parse(model_id, entry, f"genai-prices {provider}/{model_id}")
    return price.with_origin(source)


def apply_overlay(entry: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``entry`` with the overlay's price fields on top (service tiers merged tier by tier)."""
    out = dict(entry)
    for k, v in overlay.items():
        if k in ("source", "date", "reason", "provider", "corrects", "notes", "aliases"):
            continue
        if k == "service_tiers" and isinstance(v, Mapping):
            out[k] = {**(out.get(k) or {}), **v}
        else:
            out[k] = v
    return out


def overlay_origin(overlay: Mapping[str, Any]) -> str:
    return f"overlay {overlay.get('date', '?')}"


def utc_now_ts() -> float:
    return datetime.now(UTC).timestamp()
