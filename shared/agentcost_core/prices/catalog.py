"""The price catalog: genai-prices with our overlay as the base, user overrides merged on top, id resolution."""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from ..errors import PriceFileError
from ..usage import Usage
from .base import BasePrices
from .merge import PriceLayer
from .model_ids import candidates
from .model_price import ModelPrice

__all__ = ["PriceCatalog"]

logger = logging.getLogger("agentcost")
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
    named by ``AGENTCOST_PRICES`` when set. ``catalog.merged(other)`` returns a catalog with
    ``other``'s entries on top: an entry for a model the catalog prices is merged field by field
    (see :mod:`.merge`), any other is added. ``PriceCatalog(prices)`` holds ``prices`` only. A model
    id resolves once (our prices first, then the base); later look-ups are a dict hit.
    """

    def __init__(
        self, prices: Iterable[ModelPrice] = (), *, updated: str | None = None, base: BasePrices | None = None
    ) -> None:
        self._prices: dict[str, ModelPrice] = {}
        self._aliases: dict[str, str] = {}
        #: key -> the user entries (as given) to merge on top of the base's price of that model, in
        #: order; a key without layers is a full price that stands alone.
        self._layers: dict[str, tuple[PriceLayer, ...]] = {}
        self.updated = updated
        #: genai-prices with our overlay, under ``prices`` (None: a catalog of ``prices`` only).
        self.base = base
        for p in prices:
            self._add(p)
        self._resolved: dict[str, ModelPrice | None] = {}

    def _add(self, price: ModelPrice, layers: tuple[PriceLayer, ...] | None = None) -> None:
        key = price.model.lower()
        self._prices[key] = price
        if layers:
            self._layers[key] = layers
        else:
            self._layers.pop(key, None)
        for alias in price.aliases:
            self._aliases[alias.lower()] = key

    @classmethod
    def _of_layers(cls, entries: Iterable[tuple[ModelPrice, PriceLayer]], updated: str | None = None) -> PriceCatalog:
        """A catalog of user entries: each priced alone here, merged on top when this catalog is."""
        out = cls(updated=updated)
        for price, layer in entries:
            out._add(price, (layer,))
        return out

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

        A bare ``{id: {...}}`` mapping is accepted too, for small override files. Each entry needs
        ``input`` and ``output``; merged on top of a catalog that prices the model, the fields it
        gives replace that price's fields and the rest is kept (see :mod:`.merge`).
        """
        if not isinstance(data, Mapping):
            raise PriceFileError(f"{source}: expected a JSON object at the top level")
        models = data.get("models", data if "models" not in data else None)
        if not isinstance(models, Mapping):
            raise PriceFileError(f"{source}: 'models' must be an object of model id -> prices")
        entries = []
        for model, entry in models.items():
            if model in ("schema", "updated"):
                continue
            where = f"{source}: models[{model!r}]"
            price = ModelPrice.parse(str(model), entry, where).with_origin(origin)
            if price.source is None:
                price = replace(price, source=f"{origin}: {source}")
            entries.append((price, PriceLayer(dict(entry), where, origin, f"{source} ({origin})")))
        return cls._of_layers(entries, updated=data.get("updated") if isinstance(data.get("updated"), str) else None)

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
        """A new catalog: this one with ``other``'s entries (or an override dict) on top.

        An entry of ``other`` for a model this catalog already prices (its own entry, or the base's:
        genai-prices with our overlay) is MERGED on top of that price: the fields it gives replace
        those fields, the others are kept, and prices derived from a price it changes (cache
        prices, service tiers, long context) keep their ratio to it. See :mod:`.merge` for the
        rules. Entries of ``other`` built as whole :class:`ModelPrice` objects
        (``PriceCatalog([...])``) replace the model's price as they are."""
        if not isinstance(other, PriceCatalog):
            other = PriceCatalog.from_dict(other, source="<overrides>")
        out = PriceCatalog(updated=self.updated, base=self.base)
        for key, p in self._prices.items():
            out._add(p, self._layers.get(key))
        for key, p in other._prices.items():
            layers = other._layers.get(key)
            mine = out._prices.get(key)
            if layers and mine is not None:  # on top of our own entry: merged now
                for layer in layers:
                    mine = layer.apply(mine)
                below = out._layers.get(key)  # ours is itself merged on top of the base's price
                out._add(mine, below + layers if below else None)
            else:
                out._add(p, layers)
            out._own(key)  # merged on top of the base's price now: a bad merge fails here, not on a call
        return out

    def use_base(self, base: BasePrices) -> None:
        """Price with ``base`` (newer genai-prices data with the overlay) under this catalog's own
        prices from now on; model ids resolve again on their next look-up."""
        if not isinstance(base, BasePrices):
            raise TypeError(f"base must be BasePrices, got {type(base).__name__}")
        self.base = base
        self._resolved = {}  # a look-up under way keeps writing into the old dict

    # --- lookup -------------------------------------------------------------------------
    def _own_key(self, model: str) -> str | None:
        for key in candidates(model):
            key = self._aliases.get(key, key)
            if key in self._prices:
                return key
        return None

    def _own(self, key: str, when: float | None = None, *, strict: bool = True) -> ModelPrice:
        """Our entry ``key``: merged on top of the base's price of that model (at ``when``) when the
        base has it and the entry is a user entry, else as it is."""
        price = self._prices[key]
        layers = self._layers.get(key)
        base = self.base
        # a time-of-day price (DeepSeek's off-peak hours) is left out: your entry applies at every hour
        below = None if not layers or base is None else base.get(price.model, when, windows=False)
        if below is None:
            return price
        try:
            for layer in layers:  # type: ignore[union-attr]
                below = layer.apply(below)
        except PriceFileError as e:
            if strict:
                raise
            logger.warning("%s; priced with the entry alone", e)  # newer base data: never break a call
            return price
        return below

    def get(self, model: str | None) -> ModelPrice | None:
        """The price of ``model`` after id resolution, or None when the model is unknown."""
        if not model:
            return None
        resolved = self._resolved
        try:
            return resolved[model]
        except KeyError:
            pass
        own = self._own_key(model)
        found = None if own is None else self._own(own, strict=False)
        base = self.base
        if found is None and base is not None:
            found = base.get(model)
        if len(resolved) > 10_000:
            resolved.clear()
        resolved[model] = found
        return found

    def at(self, model: str | None, when: float) -> ModelPrice | None:
        """The price of ``model`` that applied at ``when`` (UTC epoch seconds): genai-prices' dated
        prices, with a user entry's fields merged on top of the price at ``when``; the overlay's
        additions and user prices of models genai-prices lacks apply whenever."""
        current = self.get(model)
        if current is None or self.base is None:
            return current
        own = self._own_key(model)  # type: ignore[arg-type]
        if own is not None and own in self._layers:
            price = self._own(own, when, strict=False)  # the user's fields on the base's dated price
        elif not (current.origin or "").startswith("genai"):
            return current
        else:
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
        for key in self._prices:
            p = self._own(key, strict=False)
            prices[(p.provider, p.model.lower())] = p
        return iter(sorted(prices.values(), key=lambda p: (p.provider, p.model)))

    def __len__(self) -> int:
        return sum(1 for _ in self)
