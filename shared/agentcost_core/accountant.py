"""The one accountant of every model call: the worst case before it, "usage or estimate" after
it, one pricing policy, one :class:`CostEvent`.

Both adapters, the budgets and the ledger go through the same :class:`Accountant`, so the
ledger and the budgets see the same number for the same call:

* **before** — :meth:`Accountant.worst_case`: every billed input part (messages, tool schemas,
  images) counted with the model family's tokenizer (plus ``estimate_margin`` when the count is
  an estimate), and ``max_tokens`` of output, or the model's maximum output from the price data
  when the call sets none, times the completions it asks for (OpenAI ``n``), at the model's price for its service tier, long-context tier
  included. A model the catalog does not know is priced at ``fallback`` (by default the
  catalog's most expensive input and output prices).
* **after** — :meth:`Accountant.usage_of`: the provider's usage when it could be read, otherwise
  the tokens counted by us, marked ``estimated`` (never a priced $0).
* **pricing** — :meth:`Accountant.ledger_cost`: the catalog's price, ``None`` for an unknown model
  (reports list it as unpriced); :meth:`Accountant.budget_cost`: the same, with the fallback
  prices for an unknown model. An LLM-cache hit costs $0 in both.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .attribution import NO_ATTRIBUTION
from .call import ModelCall, Outcome, describe_error
from .errors import ConfigurationError
from .events import CostEvent, new_event_id
from .prices import ModelPrice, PriceCatalog
from .prices.model_ids import canonical_provider, provider_hint
from .prices.model_price import BucketPrices
from .tokens import TokenCounter
from .usage import BUCKETS, IteratedUsage, Usage

__all__ = ["PRICED_KINDS", "Accountant", "WorstCase", "image_tokens"]

#: The event kinds the accountant prices: model calls and embedding calls.
PRICED_KINDS = frozenset({"llm", "embedding"})

logger = logging.getLogger("agentcost")
_ZERO = Decimal(0)

#: The most tokens one image part can be billed at, per provider (high detail, largest size):
#: OpenAI gpt-4o 8 tiles × 170 + 85; gpt-4o-mini bills images at 33× the tokens; Anthropic
#: ~1,600 tokens for a 1.15-megapixel image; Gemini 258 tokens per 768×768 tile, up to 8 tiles.
_IMAGE_TOKENS = {"openai": 1_445, "anthropic": 1_600, "google": 2_064}
_IMAGE_TOKENS_MINI = 48_169  # gpt-4o-mini / gpt-4.1-mini style models billing 2,833 + 5,667 per tile
_IMAGE_TOKENS_OTHER = 2_064


def image_tokens(model: str | None) -> int:
    """Worst-case tokens billed for one image part sent to ``model``."""
    name = (model or "").lower()
    if "gpt-4o-mini" in name:
        return _IMAGE_TOKENS_MINI
    return _IMAGE_TOKENS.get(provider_hint(name) or "", _IMAGE_TOKENS_OTHER)


@dataclass(frozen=True, slots=True)
class WorstCase:
    """What a call may cost at most: reserved before it runs."""

    usd: Decimal
    input_tokens: int
    output_tokens: int
    estimated: bool

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


_warned_unpriced: set[str] = set()
_warn_lock = threading.Lock()


def warn_unpriced_once(model: str | None) -> None:
    key = model or "<no model name>"
    with _warn_lock:
        if key in _warned_unpriced:
            return
        _warned_unpriced.add(key)
    logger.warning(
        "agentcost: no price for model %r; its calls are recorded as UNPRICED (cost None), not $0. "
        "Add it with PriceCatalog.default().merged({...}) or AGENTCOST_PRICES=path.json",
        key,
    )


_warned_tools: set[tuple[str, str]] = set()


def warn_unpriced_tools_once(model: str | None, tools: tuple[str, ...]) -> None:
    """Once per (model, tool) per process: a server-side tool's requests are not in ``cost``."""
    key = model or "<no model name>"
    with _warn_lock:
        new = [t for t in tools if (key, t) not in _warned_tools]
        _warned_tools.update((key, t) for t in new)
    if new:
        logger.warning(
            "agentcost: the price data has no fee for the server-side tool request(s) %s of model %r: their "
            "fees are NOT in the recorded cost (the event lists them in extra['server_tools_unpriced'])",
            ", ".join(new),
            key,
        )


def server_tool_requests(event: CostEvent) -> dict[str, int] | None:
    """The server-side tool requests a priced call recorded (``extra["server_tool_requests"]``), or None."""
    tools = event.extra.get("server_tool_requests") if event.extra else None
    return tools if isinstance(tools, dict) and tools else None


def _fallback_prices(catalog: PriceCatalog) -> BucketPrices:
    prices = list(catalog)
    top_in = max((p.base.input for p in prices), default=Decimal(15))
    top_out = max((p.base.output for p in prices), default=Decimal(75))
    return BucketPrices(top_in, top_out, top_in, top_in * 2, top_in * 2)


def _text(value: object) -> str | None:
    return None if value is None else value if isinstance(value, str) else str(value)


_DEFAULT_TIERS = ("default", "auto", "standard")


def served_tier(call: ModelCall | None, outcome: Outcome) -> str | None:
    """The service tier a call was billed at: the one the response names (``"default"`` when it
    was served on the default tier, whatever was asked), else the one the request asked for."""
    tier = outcome.service_tier if outcome.service_tier is not None else (call.service_tier if call else None)
    return None if tier in _DEFAULT_TIERS else tier


class Accountant:
    """Prices calls with one catalog, for the ledger and the budgets alike.

    ``Accountant(catalog=None, *, fallback=None, default_max_tokens=4096, estimate_margin=0.1)``:
    ``default_max_tokens`` is the output reserved for a call that sets no ``max_tokens`` to a
    model whose maximum output the price data does not give.
    """

    def __init__(
        self,
        catalog: PriceCatalog | None = None,
        *,
        fallback: BucketPrices | None = None,
        default_max_tokens: int = 4096,
        estimate_margin: float = 0.1,
    ) -> None:
        if catalog is not None and not isinstance(catalog, PriceCatalog):
            raise TypeError(f"catalog must be a PriceCatalog, got {type(catalog).__name__}")
        if isinstance(default_max_tokens, bool) or not isinstance(default_max_tokens, int) or default_max_tokens < 1:
            raise ConfigurationError(f"default_max_tokens must be a positive int, got {default_max_tokens!r}")
        if isinstance(estimate_margin, bool) or not isinstance(estimate_margin, (int, float)) or not 0 <= estimate_margin <= 10:
            raise ConfigurationError(f"estimate_margin must be a fraction >= 0, got {estimate_margin!r}")
        if fallback is not None and not isinstance(fallback, BucketPrices):
            raise ConfigurationError(f"fallback must be BucketPrices, got {type(fallback).__name__}")
        self.catalog = catalog if catalog is not None else PriceCatalog.default()
        self.fallback = fallback if fallback is not None else _fallback_prices(self.catalog)
        self.default_max_tokens = default_max_tokens
        self.estimate_margin = float(estimate_margin)

    def __repr__(self) -> str:
        return f"Accountant(models={sum(1 for _ in self.catalog)}, default_max_tokens={self.default_max_tokens})"

    # --- prices -----------------------------------------------------------------------------
    def price(self, model: str | None, requested: str | None = None) -> ModelPrice | None:
        """The served model's price, else the requested model's, else None (unknown)."""
        price = self.catalog.get(model) if model else None
        if price is None and requested and requested != model:
            price = self.catalog.get(requested)
        return price

    def ledger_cost(self, usage: Usage, model: str | None, *, service_tier: str | None = None,
                    requested: str | None = None, server_tools: object = None) -> Decimal | None:  # fmt: skip
        """What the call cost — its tokens and its ``server_tools`` requests (``{"web_search": 3}``,
        what an event's ``extra["server_tool_requests"]`` holds) at the same price — or None when no
        price is known, for the model or for one of the tools (never a silent $0, never a partial sum).
        What the re-pricers (replay, profile, imports) use."""
        price = self.price(model, requested)
        if price is None:
            return None
        fee, unpriced = self.tool_fee(price, server_tools)
        return None if unpriced else price.cost(usage, service_tier) + fee

    @staticmethod
    def tool_fee(price: ModelPrice, server_tools: object) -> tuple[Decimal, tuple[str, ...]]:
        """``(USD, tools without a fee)`` of a call's server-side tool requests at ``price``, billed per
        request on top of the tokens; ``($0, ())`` for none. The one fee calculation: the call path
        (:meth:`event`), the breakdown (:meth:`cost_parts`) and :meth:`ledger_cost` use it."""
        if not isinstance(server_tools, Mapping) or not server_tools:
            return _ZERO, ()
        return price.tool_cost(server_tools)

    def budget_cost(self, usage: Usage | None, model: str | None, *, service_tier: str | None = None,
                    requested: str | None = None, cache_hit: bool = False) -> Decimal:  # fmt: skip
        """What a budget counts: the ledger's cost, the fallback prices for an unknown model, $0
        for a cache hit or a call with no usage at all."""
        if cache_hit or usage is None:
            return _ZERO
        price = self.price(model, requested)
        if price is None:
            return self.fallback.cost(usage)
        return price.cost(usage, service_tier)

    def _price_iterations(self, usage: IteratedUsage, model: str | None, price: ModelPrice | None,
                          tier: str | None) -> tuple[Decimal | None, Decimal, list[dict[str, Any]]]:  # fmt: skip
        """(ledger cost, budget cost, per-iteration detail) of a response billed as the sum of its
        iterations, each at the price of the model that ran it (the response's model when it names
        none). The ledger cost is None when any iteration's model has no price (never a partial sum)."""
        cost: Decimal | None = _ZERO
        budget = _ZERO
        detail: list[dict[str, Any]] = []
        for kind, ran, part in usage.iterations:
            p = price if ran is None or ran == model else self.price(ran)
            if p is not None:
                part_cost: Decimal | None = p.cost(part, tier)
                budget += part_cost
                cost = None if cost is None else cost + part_cost
            else:
                part_cost, cost = None, None
                budget += self.fallback.cost(part)
                warn_unpriced_once(ran or model)
            row: dict[str, Any] = {"type": kind, "model": ran or model, **part.as_dict()}
            row["cost"] = None if part_cost is None else str(part_cost)
            detail.append(row)
        return cost, budget, detail

    def max_output(self, model: str | None) -> int:
        price = self.price(model)
        if price is not None and price.max_output:
            return price.max_output
        return self.default_max_tokens

    # --- before the call ----------------------------------------------------------------------
    def input_of(self, call: ModelCall) -> tuple[int, bool]:
        """(input tokens, estimated) of every billed input part: messages, tool schemas, images."""
        count = call.input_tokens()
        tokens, estimated = count.tokens, not count.exact
        if call.images:
            tokens += call.images * image_tokens(call.model)
            estimated = True
        return tokens, estimated

    def output_of(self, call: ModelCall) -> int:
        """The most output tokens ``call`` can be billed for: ``max_tokens`` (the model's maximum output
        when it sets none) for each completion it asks for."""
        cap = call.max_tokens if call.max_tokens is not None else self.max_output(call.model)
        return cap * call.choices

    def worst_case(self, call: ModelCall) -> WorstCase:
        """The most ``call`` can cost (see the module docstring)."""
        tokens, estimated = self.input_of(call)
        return self.worst_case_of(call.model, tokens, self.output_of(call), service_tier=call.service_tier,
                                  estimated=estimated)  # fmt: skip

    def worst_case_of(self, model: str | None, input_tokens: int, max_tokens: int | None = None, *,
                      service_tier: str | None = None, estimated: bool = False) -> WorstCase:  # fmt: skip
        """The worst case from counts already made (``max_tokens=0``: no output, as for an embedding;
        None: the model's maximum output)."""
        if estimated and self.estimate_margin:
            input_tokens = int(input_tokens * (1 + self.estimate_margin)) + 1
        out = max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens >= 0 \
            else self.max_output(model)  # fmt: skip
        usage = Usage(input=input_tokens, output=out)
        price = self.price(model)
        if price is not None and price.until is not None and time.time() >= price.until:
            price = self.catalog.at(model, time.time()) or price  # a dated or time-of-day change since it resolved
        prices = price.prices_for(usage, service_tier) if price is not None else self.fallback
        return WorstCase(prices.cost(usage), input_tokens, out, estimated)

    # --- after the call -----------------------------------------------------------------------
    def usage_of(self, call: ModelCall | None, outcome: Outcome) -> tuple[Usage | None, bool]:
        """(usage, estimated): the provider's usage, or our count when it reported none, could not
        be read, or reported no tokens for a call that produced output. A failed call with no
        usage has none."""
        usage = outcome.usage
        if usage is not None and not usage.total and not outcome.cache_hit and (outcome.text or outcome.tool_calls):
            outcome.usage_error = outcome.usage_error or "usage reports no tokens for a call that produced output"
            usage = None
        if usage is not None:
            return usage, False
        if outcome.error is not None or outcome.cache_hit:
            return None, False
        return self.estimate(call, outcome), True

    def estimate(self, call: ModelCall | None, outcome: Outcome) -> Usage:
        """The call's tokens counted by us (memoized per message)."""
        model = outcome.model or (call.model if call is not None else None)
        counter = TokenCounter.for_model(model)
        n_in = 0
        if call is not None:
            n_in = call.input_tokens().tokens + call.images * image_tokens(model)
        text = outcome.text
        if outcome.tool_calls:
            text += "".join(f"{name}{args}" for name, args in outcome.tool_calls)
        n_out = counter.count_text(text).tokens if text else 0
        return Usage(input=n_in, output=n_out)

    def cost_parts(self, event: CostEvent) -> dict[str, Decimal] | None:
        """The priced model call ``event``'s cost per bucket (``input``, ``cache_read``,
        ``cache_write_5m``, ``cache_write_1h``, ``output``, ``reasoning`` as a part of output, and
        ``request`` for a per-request fee, ``server_tools`` for the server-side tool requests' fees),
        at the price that priced it; the buckets sum exactly to ``event.cost``. None for an unpriced
        event. An LLM-cache hit costs $0 in every bucket. Computed on demand (an exporter's
        breakdown), never on the hot path."""
        if event.cost is None or event.kind not in PRICED_KINDS:
            return None
        if event.cache_hit:
            return dict.fromkeys((*BUCKETS, "reasoning"), _ZERO)
        price = self.price(event.model, event.requested_model)
        if price is not None and price.until is not None:  # dated or time-of-day prices: the one at the event's time
            price = self.catalog.at(event.model, event.ts) or price
        if price is None:
            return None
        parts = price.prices_for(event.usage, event.service_tier).costs(event.usage)
        tools = server_tool_requests(event)
        if tools:
            parts["server_tools"] = self.tool_fee(price, tools)[0]
        if sum(v for k, v in parts.items() if k != "reasoning") != event.cost:
            return None  # priced by other data than this catalog's (e.g. another process's): no breakdown
        return parts

    def event(self, call: ModelCall, outcome: Outcome, *, framework: str | None = None,
              event_id: str | None = None, log_prompts: bool = False) -> tuple[CostEvent, Decimal]:  # fmt: skip
        """The call's ledger event and the amount its budgets settle at, priced once. A failed call's
        error is kept as its class and status, with its (redacted) message only under ``log_prompts``."""
        usage, estimated = self.usage_of(call, outcome)
        model = outcome.model or call.model
        price = self.price(model, call.model)
        if price is not None and price.until is not None and time.time() >= price.until:
            price = self.catalog.at(model, time.time()) or price  # a dated price change since it resolved
        tier = served_tier(call, outcome)
        # Priced once: the ledger's cost, and from it what the budgets settle at (budget_cost's rules).
        cost: Decimal | None = None
        saved: Decimal | None = None
        budget = _ZERO
        iterations: list[dict[str, Any]] | None = None
        if usage is not None:
            if isinstance(usage, IteratedUsage):
                cost, budget, iterations = self._price_iterations(usage, model, price, tier)
                usage = usage.summed()
            elif price is not None:
                cost = budget = price.cost(usage, tier)
            else:
                budget = self.fallback.cost(usage)
        tools, unpriced_tools = outcome.server_tools, ()
        if tools and price is not None:  # billed per request on top of the tokens
            fee, unpriced_tools = self.tool_fee(price, tools)
            if fee:
                budget += fee  # a budget counts a known fee even when the tokens' ledger cost is unknown
                if cost is not None:
                    cost += fee
        if outcome.cache_hit:
            saved, cost, budget = cost, _ZERO, _ZERO
        elif price is None and outcome.error is None:
            warn_unpriced_once(model)
        extra = dict(outcome.extra) if outcome.extra else None
        if outcome.usage_error:
            extra = {**(extra or {}), "usage_error": outcome.usage_error}
        if iterations is not None:
            extra = {**(extra or {}), "iterations": iterations}
        if tools:
            extra = {**(extra or {}), "server_tool_requests": dict(tools)}
            if unpriced_tools:
                extra["server_tools_unpriced"] = list(unpriced_tools)
                warn_unpriced_tools_once(model, unpriced_tools)
        provider = call.provider and canonical_provider(call.provider)
        if not provider:
            provider = price.provider if price is not None else outcome.usage_provider or provider_hint(model or "")
        # What every call has; then what only some calls have (attribution, a step, a parent, an
        # estimate, a cache hit, a tier, an error, a route, extra details), set when present: each
        # keyword argument of a 28-field constructor costs about as much as setting two fields.
        event = CostEvent(
            model=model,
            usage=usage if usage is not None else Usage(),
            cost=cost,
            provider=provider,
            priced=cost is not None,
            requested_model=call.model,
            trace_id=_text(call.trace_id),
            span_id=_text(call.span_id),
            latency_s=outcome.latency_s,
            framework=framework or call.framework,
            price_source=price.origin if price is not None and usage is not None else None,
            id=event_id if event_id is not None else new_event_id(),
        )
        a = call.attribution
        if a is not NO_ATTRIBUTION:
            event.user_id, event.session_id, event.feature = a.user_id, a.session_id, a.feature
            event.agent_id, event.task_id = a.agent_id, a.task_id
        if call.step is not None:
            event.step = call.step
        if call.parent_id is not None:
            event.parent_id = _text(call.parent_id)
        if estimated:
            event.estimated = True
        if outcome.cache_hit:
            event.cache_hit, event.saved = True, saved
        if tier is not None:
            event.service_tier = tier
        if outcome.error is not None:
            event.error = describe_error(outcome.error, keep_message=log_prompts)
        if outcome.tier is not None:
            event.tier = outcome.tier
        if call.kind != "llm":
            event.kind = call.kind
        if extra:
            event.extra = extra
        return event, budget
