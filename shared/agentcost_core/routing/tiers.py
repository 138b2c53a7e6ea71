"""Tiers: named models with their catalog prices, ordered cheapest first."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterator, Mapping

from ..errors import ConfigurationError
from ..prices import ModelPrice, PriceCatalog

__all__ = ["Tier", "TierSet"]

logger = logging.getLogger("agentcost.routing")


@dataclass(frozen=True, slots=True)
class Tier:
    """One tier: its name, the model it runs, that model's catalog price (None: unpriced)."""

    name: str
    model: str | None
    price: ModelPrice | None
    rank: int = 0  # 0 = cheapest

    @property
    def blended(self) -> Decimal | None:
        """USD per 1M tokens at a 3:1 input:output mix, the usual way to compare model prices."""
        if self.price is None:
            return None
        return (3 * self.price.base.input + self.price.base.output) / 4


class TierSet:
    """The router's tiers by name, ranked cheapest first (by blended catalog price, or in the
    given order with ``order="given"``). A tier whose model has no catalog price is warned about
    and ranked by position (its calls are recorded as unpriced)."""

    def __init__(self, models: Mapping[str, str | None], *, catalog: PriceCatalog | None = None, order: str = "price") -> None:
        if not models:
            raise ConfigurationError("a router needs at least one tier: tiers={'nano': model, 'frontier': model}")
        if order not in ("price", "given"):
            raise ConfigurationError(f"order must be 'price' or 'given', got {order!r}")
        catalog = catalog or PriceCatalog.default()
        raw = []
        for pos, (name, model) in enumerate(models.items()):
            if not isinstance(name, str) or not name:
                raise ConfigurationError(f"tier names must be non-empty strings, got {name!r}")
            price = catalog.get(model) if model else None
            if price is None:
                logger.warning("agentcost routing: tier %r (model %r) has no catalog price; its calls are unpriced", name, model)
            raw.append((pos, name, model, price))
        if order == "price":
            priced = sorted((r for r in raw if r[3] is not None), key=lambda r: ((3 * r[3].base.input + r[3].base.output), r[0]))
            unpriced = [r for r in raw if r[3] is None]
            raw = priced + unpriced if priced else raw
        self._tiers = {name: Tier(name, model, price, rank) for rank, (_, name, model, price) in enumerate(raw)}
        self.order = [t.name for t in self._tiers.values()]

    def __getitem__(self, name: str) -> Tier:
        try:
            return self._tiers[name]
        except KeyError:
            raise ConfigurationError(f"unknown tier {name!r}; the tiers are {self.order}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tiers

    def __iter__(self) -> Iterator[Tier]:
        return iter(self._tiers.values())

    def __len__(self) -> int:
        return len(self._tiers)

    @property
    def cheapest(self) -> Tier:
        return self._tiers[self.order[0]]

    @property
    def top(self) -> Tier:
        return self._tiers[self.order[-1]]

    def check(self, *names: str) -> None:
        """Raise a clear error if a policy names a tier the router does not have."""
        for n in names:
            if n not in self._tiers:
                raise ConfigurationError(f"policy names tier {n!r}, but the router's tiers are {self.order}")

    def cheaper(self, a: str, b: str) -> str:
        return a if self[a].rank <= self[b].rank else b
