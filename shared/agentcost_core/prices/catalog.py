"""The price catalog: genai-prices with our overlay as the base, user overrides merged on top, id resolution."""

from __future__ import annotations

import json
import os
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from ..errors import PriceFileError
from ..usage import Usage
from .base import BasePrices
from .model_ids import candidates
from .model_price import ModelPrice

__all__ = ["PriceCatalog"]

_DEFAULT_LOCK = threading.Lock()
_DEFAULT: PriceCatalog | None = None
_WATCHER: Any = None  # the default catalog's PriceDataWatcher (see .reload)


def _read_json(p: Path) -> Any:
    try:
        return json.loads(p.read_text("utf-8"))
    except FileNotFoundError:
        raise PriceFileError(f"price file not found: {p}") from None
    except json.JSONDecodeError as e:
        raise PriceFileError(f"{p}: not valid JSON ({e})") from None


def _watch(catalog: PriceCatalog) -> None:
    """Watch the default catalog's kept data (``AGENTCOST_PRICES_WATCH`` seconds, default 60; 0: off)."""
    from .reload import DEFAULT_PERIOD, PriceDataWatcher

    global _WATCHER
    raw = os.environ.get("AGENTCOST_PRICES_WATCH", "").strip()
    try:
        period = float(raw) if raw else DEFAULT_PERIOD
    except ValueError:
        raise PriceFileError(f"AGENTCOST_PRICES_WATCH must be a number of seconds, got {raw!r}") from None
    if period > 0:
        _WATCHER = PriceDataWatcher(catalog, period=period).start()


class PriceCatalog:
    """Model id → :class:`ModelPrice`. Lookups resolve dated, prefixed and Bedrock/Vertex ids.

    ``PriceCatalog.default()`` is genai-prices with our overlay (see :mod:`.base`) plus the file
    named by ``AGENTCOST_PRICES`` when set. ``catalog.merged(other)`` returns a catalog where
    ``other``'s entries win; ``PriceCatalog(prices)`` holds ``prices`` only. A model id resolves
    once (our prices first, then the base); later look-ups are a dict hit.
    """

    def __init__(
        self, prices: Iterable[ModelPrice] = (), *, updated: str | None = None, base: BasePrices | None = None
    ) -> None:
        self._prices: dict[str, ModelPrice] = {}
        self._aliases: dict[str, str] = {}
        self.updated = updated
        #: genai-prices with our overlay, under ``prices`` (None: a catalog of ``prices`` only).
        self.base = base
        for p in prices:
            self._add(p)
        self._resolved: dict[str, ModelPrice | None] = {}

    def _add(self, price: ModelPrice) -> None:
        key = price.model.lower()
        self._prices[key] = price
        for alias in price.aliases:
            self._aliases[alias.lower()] = key

    # --- construction -------------------------------------------------------------------
    @classmethod
    def default(cls) -> PriceCatalog:
        """genai-prices (the packaged data, or the newer data ``agentcost prices update`` kept) with
        our overlay, compiled once (cached), and ``AGENTCOST_PRICES`` overrides when set. Newer kept
        data is picked up while the process runs (see :mod:`.reload`)."""
        global _DEFAULT
        if _DEFAULT is None:
            with _DEFAULT_LOCK:
                if _DEFAULT is None:
                    catalog = cls(base=BasePrices.load())
                    override = os.environ.get("AGENTCOST_PRICES")
                    if override:
                        catalog = catalog.merged(cls.from_file(override))
                    _watch(catalog)
                    _DEFAULT = catalog
        return _DEFAULT

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>", origin: str = "user") -> PriceCatalog:
        """Our format: ``{"models": {id: {"input": "2.50", "output": "10", ...}}}`` (USD per 1M tokens).

        A bare ``{id: {...}}`` mapping is accepted too, for small override files.
        """
        if not isinstance(data, Mapping):
            raise PriceFileError(f"{source}: expected a JSON object at the top level")
        models = data.get("models", data if "models" not in data else None)
        if not isinstance(models, Mapping):
            raise PriceFileError(f"{source}: 'models' must be an object of model id -> prices")
        prices = []
        for model, entry in models.items():
            if model in ("schema", "updated"):
                continue
            prices.append(ModelPrice.parse(str(model), entry, f"{source}: models[{model!r}]").with_origin(origin))
        return cls(prices, updated=data.get("updated") if isinstance(data.get("updated"), str) else None)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PriceCatalog:
        """Load a price file: our JSON format, or LiteLLM's ``model_prices_and_context_window.json``."""
        p = Path(path)
        data = _read_json(p)
        from .litellm import is_litellm_format, parse_litellm

        if is_litellm_format(data):
            return parse_litellm(data, source=str(p))
        return cls.from_dict(data, source=str(p))

    @classmethod
    def from_litellm(cls, data_or_path: Mapping[str, Any] | str | os.PathLike[str]) -> PriceCatalog:
        """Import LiteLLM's ``model_prices_and_context_window.json`` (a path or the parsed dict)."""
        from .litellm import parse_litellm

        if isinstance(data_or_path, Mapping):
            return parse_litellm(data_or_path, source="<litellm dict>")
        p = Path(data_or_path)
        return parse_litellm(_read_json(p), source=str(p))

    def merged(self, other: PriceCatalog | Mapping[str, Any]) -> PriceCatalog:
        """A new catalog: this one with ``other``'s entries (or an override dict) on top."""
        if not isinstance(other, PriceCatalog):
            other = PriceCatalog.from_dict(other, source="<overrides>")
        out = PriceCatalog(self._prices.values(), updated=self.updated, base=self.base)
        for p in other._prices.values():
            out._add(p)
        return out

    def use_base(self, base: BasePrices) -> None:
        """Price with ``base`` (newer genai-prices data with the overlay) under this catalog's own
        prices from now on; model ids resolve again on their next look-up."""
        if not isinstance(base, BasePrices):
            raise TypeError(f"base must be BasePrices, got {type(base).__name__}")
        self.base = base
        self._resolved = {}  # a look-up under way keeps writing into the old dict

    # --- lookup -------------------------------------------------------------------------
    def get(self, model: str | None) -> ModelPrice | None:
        """The price of ``model`` after id resolution, or None when the model is unknown."""
        if not model:
            return None
        resolved = self._resolved
        try:
            return resolved[model]
        except KeyError:
            pass
        found = None
        for key in candidates(model):
            key = self._aliases.get(key, key)
            if key in self._prices:
                found = self._prices[key]
                break
        base = self.base
        if found is None and base is not None:
            found = base.get(model)
        if len(resolved) > 10_000:
            resolved.clear()
        resolved[model] = found
        return found

    def at(self, model: str | None, when: float) -> ModelPrice | None:
        """The price of ``model`` that applied at ``when`` (UTC epoch seconds): genai-prices' dated
        prices; the overlay's and user prices apply whenever."""
        current = self.get(model)
        if current is None or self.base is None or not (current.origin or "").startswith("genai"):
            return current
        price = self.base.get(model, when)  # type: ignore[arg-type]
        if price is not None and current.until is not None and when >= current.until:
            self._resolved[model] = price  # type: ignore[index]  # time moved on: later calls find it at once
        return price

    def resolve(self, model: str) -> str | None:
        """The catalog key a model id resolves to."""
        p = self.get(model)
        return p.model if p else None

    def cost(self, model: str | None, usage: Usage, *, service_tier: str | None = None) -> Decimal | None:
        """Exact USD cost of one call, or None when the model is not in the catalog."""
        p = self.get(model)
        return None if p is None else p.cost(usage, service_tier)

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.get(model) is not None

    def __iter__(self) -> Iterator[ModelPrice]:
        """Every price: the base's (genai-prices with the overlay), then ours on top, by provider."""
        prices = {(p.provider, p.model.lower()): p for p in (self.base.current() if self.base else ())}
        prices.update({(p.provider, p.model.lower()): p for p in self._prices.values()})
        return iter(sorted(prices.values(), key=lambda p: (p.provider, p.model)))

    def __len__(self) -> int:
        return sum(1 for _ in self)
