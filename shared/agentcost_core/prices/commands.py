"""``agentcost prices``: which price data is in use and how old it is, prices by provider, search,
look-ups with the source of each price, and ``agentcost prices update``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import Any

from ..errors import ConfigurationError, PriceFileError
from .catalog import PriceCatalog
from .data_files import STALE_DAYS, data_dir, update_data
from .model_price import ModelPrice

__all__ = ["cmd_prices", "data_summary"]


def data_summary(catalog: PriceCatalog, now: float | None = None) -> dict[str, Any]:
    """{"origin", "since", "age_days", "path", "url", "stale"} of the genai-prices data in use."""
    info = dict(catalog.base.data_info) if catalog.base is not None else {"origin": "user prices only"}
    since = info.get("since")
    age = None if since is None else ((now or time.time()) - float(since)) / 86400
    info["age_days"] = None if age is None else round(age, 1)
    info["stale"] = age is not None and age > STALE_DAYS
    info["data_dir"] = str(data_dir())
    return info


def _describe(info: dict[str, Any]) -> str:
    where = f"kept at {info['path']} (from {info.get('url')})" if info.get("path") else "packaged with agentcost"
    age = "" if info.get("age_days") is None else f", {info['age_days']:g} days old"
    if info.get("dated"):  # packaged data: dated by its newest price change
        age = f", newest price change {info['dated']}{age}"
    return f"price data: {info['origin']}, {where}{age}; corrections and additions: agentcost overlay"


def _update(args: argparse.Namespace) -> int:
    if len(args.models) > 1:
        print("agentcost: `agentcost prices update` takes no model ids (use --url or --file)", file=sys.stderr)
        return 2
    try:
        done = update_data(url=args.url, file=args.file)
    except PriceFileError as e:  # unreachable, not JSON, not genai-prices data: the kept file stays
        print(f"agentcost: {e}", file=sys.stderr)
        return 1
    print(f"kept {done['models']:,} models of {done['providers']} providers from {done['url']} at {done['path']}; "
          "new processes price with it from now on")  # fmt: skip
    return 0


def _rows(catalog: PriceCatalog, args: argparse.Namespace) -> list[tuple[str, ModelPrice]] | None:
    if args.models:
        rows = []
        for m in args.models:
            p = catalog.get(m)
            if p is None:
                print(f"{m}: not in the catalog (calls to it are recorded as unpriced)", file=sys.stderr)
            else:
                rows.append((m, p))
        return rows or None
    prices = list(catalog)
    if args.provider and not any(p.provider == args.provider for p in prices):
        raise ConfigurationError(f"no models for provider {args.provider!r}; `agentcost prices` lists the providers")
    search = (args.search or "").lower()
    return [(p.model, p) for p in prices
            if (not args.provider or p.provider == args.provider) and search in p.model.lower()]  # fmt: skip


def cmd_prices(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    if args.models[:1] == ["update"]:
        return _update(args)
    if "update" in args.models:
        raise ConfigurationError("`update` is not a model id: run `agentcost prices update` on its own")
    if args.url:
        print("agentcost: --url goes with `agentcost prices update`", file=sys.stderr)
        return 2
    catalog = PriceCatalog.default()
    if args.file:
        catalog = catalog.merged(PriceCatalog.from_file(args.file))
    info = data_summary(catalog)
    if info["stale"]:
        print(f"agentcost: the price data is {info['age_days']:g} days old (more than {STALE_DAYS}); "
              "run `agentcost prices update` for newer prices", file=sys.stderr)  # fmt: skip
    listing_providers = not (args.models or args.provider or args.search)
    if listing_providers and args.format == "table":
        counts = Counter(p.provider for p in catalog)
        print(_describe(info))
        table = Table()
        table.add_column("provider")
        table.add_column("models", justify="right")
        for provider, n in sorted(counts.items()):
            table.add_row(provider, f"{n:,}")
        Console(width=160).print(table)
        print("list one provider with --provider NAME, search ids with --search TEXT, look up ids as arguments")
        return 0
    rows = _rows(catalog, args)
    if rows is None:
        return 1
    if args.format == "json":
        out: dict[str, Any] = {"_price_data": info}
        # a look-up is keyed by the id asked; a listing by provider/model (one id, several providers)
        out.update({asked if args.models else f"{p.provider}/{p.model}": p.as_entry() for asked, p in rows})
        json.dump(out, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    table = Table(title=f"USD per 1M tokens. {_describe(info)}")
    for c in ("model", "provider", "input", "cache read", "cache write 5m", "cache write 1h", "output",
              "long context", "tiers", "price source"):  # fmt: skip
        table.add_column(
            c, justify="left" if c in ("model", "provider", "tiers", "long context", "price source") else "right"
        )
    for asked, p in rows:
        b = p.base
        lc = (
            ""
            if p.long_context is None
            else f">{p.long_context_threshold:,}: {p.long_context.input}/{p.long_context.output}"
        )
        label = asked if asked == p.model else f"{asked} → {p.model}"
        table.add_row(label, p.provider, str(b.input), str(b.cache_read), str(b.cache_write_5m), str(b.cache_write_1h),
                      str(b.output), lc, ", ".join(sorted(p.tiers)), p.origin or "")  # fmt: skip
    Console(width=200).print(table)
    if args.models:
        for asked, p in rows:
            notes = [f"+ ${p.base.request} per request"] if p.base.request else []
            notes += [f"+ ${fee} per {tool.replace('_', ' ')} request" for tool, fee in p.tool_fees.items()]
            if p.until is not None:  # a dated or time-of-day change ahead
                notes.append(f"this price until {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(p.until))}")
            print(f"{asked}: {p.source}" + "".join(f"; {n}" for n in notes))
    return 0
