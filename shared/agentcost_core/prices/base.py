"""The base prices under every user override: genai-prices, compiled, with our overlay on top.

The overlay (``agentcost_core/data/prices.json``) holds corrections of genai-prices' entries and
models it lacks, each with its source and date. An entry keyed by a model genai-prices has under
the same provider corrects the fields it gives; any other entry is an addition (a full price).
Resolution of a model id: an overlay addition (by id, dated and prefixed spellings included),
else genai-prices' own matching (see :class:`~.genai.GenaiPrices`), else our id candidates.
Each model id resolves once; later calls are a dict hit.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from ..errors import PriceFileError
from .genai import (
    Dated,
    GenaiPrices,
    change_dates,
    entry_at,
    genai_version,
    load_providers,
    overlay_origin,
    price_of,
    time_of_day_window,
    utc_now_ts,
)
from .model_ids import candidates
from .model_price import ModelPrice

__all__ = ["BasePrices", "load_overlay"]

_UNSET = object()
_MAX_BUILT = 10_000  # built prices kept (time-of-day windows add two a day per model)


def load_overlay() -> dict[str, Any]:
    text = resources.files("agentcost_core").joinpath("data/prices.json").read_text("utf-8")
    return json.loads(text)


class BasePrices:
    """genai-prices' compiled prices with the overlay; ``get(model, when=None)`` is the price at
    ``when`` (UTC epoch seconds; None: now)."""

    def __init__(
        self, genai: GenaiPrices, overlay: Mapping[str, Any], *, data_info: Mapping[str, Any] | None = None
    ) -> None:
        self.genai = genai
        self.overlay = overlay
        #: Which genai-prices data is in use: {"origin", "since", and for kept data "path", "url"}.
        self.data_info = dict(data_info or {"origin": genai.origin})
        self.origin = genai.origin
        models = overlay.get("models")
        if not isinstance(models, Mapping):
            raise PriceFileError("overlay: 'models' must be an object")
        self.corrections: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.additions: dict[str, ModelPrice] = {}
        #: Corrections of models the genai-prices data in use does not have (left out).
        self.stale: list[str] = []
        for key, entry in models.items():
            if not isinstance(entry, Mapping) or not entry.get("source") or not entry.get("date"):
                raise PriceFileError(f"overlay: {key!r} needs a 'source' and a 'date'")
            provider = str(entry.get("provider") or "unknown")
            if (provider, key) in genai.entries:
                self.corrections[(provider, key)] = entry
            elif "input" not in entry or "output" not in entry:
                self.stale.append(f"{provider}/{key}")  # corrects a model this genai-prices data lacks
            else:
                price = ModelPrice.parse(key, entry, f"overlay: {key}")
                self.additions[key.lower()] = price.with_origin(overlay_origin(entry))
                for alias in price.aliases:
                    self.additions[alias.lower()] = self.additions[key.lower()]
        # The bare id → (provider, model) of genai-prices, for our candidates after its own matching.
        self._flat: dict[str, tuple[str, str]] = {}
        for pid, mid in genai.entries:
            self._flat.setdefault(mid.lower(), (pid, mid))
        self._built: dict[tuple[Any, ...], ModelPrice] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls) -> BasePrices:
        """The packaged genai-prices data, or the newer file ``agentcost prices update`` kept."""
        from .data_files import load_kept_data

        kept = load_kept_data()
        if kept is not None:
            raw, info = kept
            genai = GenaiPrices.build(load_providers(raw), origin=info["origin"])
            return cls(genai, load_overlay(), data_info=info)
        origin = f"genai-prices {genai_version()}"
        genai = GenaiPrices.build(load_providers(), origin=origin)
        installed = _installed_at()
        dated = data_date(genai.providers, installed if installed is not None else utc_now_ts())
        info = {"origin": origin, "since": dated if dated is not None else installed, "path": None, "url": None}
        if dated is not None:
            info["dated"] = datetime.fromtimestamp(dated, UTC).date().isoformat()
        return cls(genai, load_overlay(), data_info=info)

    # --- lookup -------------------------------------------------------------------------
    def model_price(self, key: tuple[str, str], when: float | None = None, *, windows: bool = True) -> ModelPrice:
        """The price of genai-prices model ``key`` = (provider id, model id) at ``when`` (None: now),
        with the overlay's correction; ``windows=False``: the standard price, outside any
        time-of-day window (valid until the next dated change)."""
        dated = self.genai.entries[key]
        now = utc_now_ts() if when is None else when
        i = 0
        for j, d in enumerate(dated):
            if d.start <= now:
                i = j
        until = dated[i + 1].start if i + 1 < len(dated) else None
        info = self.genai.time_of_day.get(key)
        if info is not None and windows:  # DeepSeek's peak / off-peak hours: the price of the window `now` is in
            return self._time_of_day_price(key, info, dated[i], now, until)
        cache_key = (key[0], key[1], dated[i].start, "standard")  # not a window's start
        price = self._built.get(cache_key)
        if price is None:
            price = _build(key, dated[i], self.origin, self.corrections.get(key), until)
            with self._lock:
                self._built[cache_key] = price
        return price

    def _time_of_day_price(self, key: tuple[str, str], info: Any, dated: Dated, now: float,
                           next_change: float | None) -> ModelPrice:  # fmt: skip
        """The price in the daily window ``now`` falls in, valid until the window ends."""
        start, end = time_of_day_window(info, now)
        cache_key = (key[0], key[1], start)
        price = self._built.get(cache_key)
        if price is None:
            entry = entry_at(info, now)
            if entry is None:  # no per-token price in this window: the compiled one
                entry = dated.entry
            until = end if next_change is None else min(end, next_change)
            price = _build(key, Dated(dated.start, entry), self.origin, self.corrections.get(key), until)
            with self._lock:
                if len(self._built) > _MAX_BUILT:
                    self._built.clear()
                self._built[cache_key] = price
        return price

    def get(self, model: str, when: float | None = None, *, windows: bool = True) -> ModelPrice | None:
        """The price of ``model`` at ``when``, or None when neither the overlay nor genai-prices has
        it; ``windows=False``: outside any time-of-day window (see :meth:`model_price`)."""
        cands = candidates(model)
        for c in cands:
            if c in self.additions:
                return self.additions[c]
        key = self.genai.resolve(model)
        if key is None:
            for c in cands:
                key = self._flat.get(c)
                if key is not None:
                    break
        return None if key is None else self.model_price(key, when, windows=windows)

    def current(self) -> Iterator[ModelPrice]:
        """Every model's price now: genai-prices' (corrected) and the overlay's additions."""
        for key in self.genai.entries:
            yield self.model_price(key, None)
        seen = set()
        for p in self.additions.values():
            if id(p) not in seen:
                seen.add(id(p))
                yield p


def data_date(providers: Iterable[Any], latest: float) -> float | None:
    """The date of genai-prices data (UTC epoch seconds), which its package does not record: the
    newest price change it carries that starts on or before ``latest`` (its install time: changes
    announced for a later date say nothing of when the data was made). The data was made on or
    after that day, so the age counted from it is at most a few days too old for fresh data and
    never too young for old data, however recently it was installed; None when it has no dates."""
    newest = None
    for provider in providers:
        for info in provider.models:
            for day in change_dates(info):
                start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
                if start <= latest and (newest is None or start > newest):
                    newest = start
    return newest


def _installed_at() -> float | None:
    """When the installed genai-prices was installed (its metadata folder's time), or None."""
    from importlib.metadata import distribution

    try:
        files = distribution("genai-prices").files or []
        meta = next(f for f in files if f.name == "METADATA")
        return meta.locate().stat().st_mtime  # type: ignore[union-attr]
    except (StopIteration, OSError, ValueError):
        return None


def _build(
    key: tuple[str, str], dated: Dated, origin: str, correction: Mapping[str, Any] | None, until: float | None
) -> ModelPrice:
    price = price_of(key[1], key[0], dated, origin=origin, overlay=correction)
    return price.with_origin(price.origin or origin, until)
