"""Rollups computed by the database (SQLite and PostgreSQL) instead of in Python: the same
:class:`~agentcost_core.rollup.Rollup`, value for value and digit for digit, as
:func:`agentcost_core.rollup.rollup` over the same events, without loading the events.

One ``GROUP BY`` pass sums every group split by (kind, model, service tier, routed top model): the
"fine groups". A report over the whole ledger grouped and filtered by fields the hourly rollup table keeps
(rollup_tables.py) reads that table instead of the events, and the total's per-session percentiles the
sessions table; grouped by feature, each feature's percentiles walk rank indexes (of the sessions table,
and of the feature's calls' costs). Python then merges them into the report's rows and values the savings with the price
catalog per fine group (exact: a price times summed tokens; a long-context model's calls above its
threshold are summed apart by a second, filtered query). Percentiles come from window queries
(rollup_percentiles.py); guard notices, which are few, are read with their ``extra``.

A ledger holding money with digits below 10⁻¹⁸ dollars (see money_columns.py) is summed in Python.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from ..events import CostEvent
from ..rollup import CALL_KINDS, GROUPABLE, NOTICE_KINDS, Rollup, RollupRow, canonical_money, notice_subject
from ..usage import Usage
from .base import where_clause
from .rollup_dialects import Dialect
from .rollup_percentiles import (
    QUANTILES,
    per_call,
    per_call_at_ranks,
    per_call_total,
    per_session,
    per_session_at_ranks,
)
from .rollup_tables import FAST_FIELDS, LONG_THRESHOLDS, RollupTables

__all__ = ["sql_rollup"]

Run = Callable[[str, Sequence[Any]], list[Any]]
_ZERO = Decimal(0)
_PER_MILLION = Decimal(1_000_000)
_BUCKETS = ("day", "hour", "month")
_CALLS = "kind IN (" + ", ".join(f"'{k}'" for k in sorted(CALL_KINDS)) + ")"
_NOTICES = "kind IN (" + ", ".join(f"'{k}'" for k in NOTICE_KINDS) + ")"
_PROMPT = "(input + cache_read + cache_write_5m + cache_write_1h)"
_USAGE = ("input", "cache_read", "cache_write_5m", "cache_write_1h", "output", "reasoning")


def _and(where: str, condition: str) -> str:
    return f"{where} AND {condition}" if where else f" WHERE {condition}"


@dataclass
class _Fine:
    """One fine group: the rows of one report group with one kind, model, service tier and routed top model."""

    key: tuple[Any, ...]
    kind: str
    model: str | None
    service_tier: str | None
    top_model: str | None
    n: int
    first: tuple[float, int]
    first_ts: float
    last_ts: float
    usage: Usage
    cache_hits: int
    saved: Decimal
    estimated: int
    errors: int
    unpriced: int
    unpriced_first: float | None
    priced: int
    cost: Decimal
    priced_cache_read: int
    long_usage: Usage = field(default_factory=Usage)
    long_priced_cache_read: int = 0


def _fine_sql(d: Dialect, keys: Sequence[str], table: str, where: str) -> str:
    unpriced = f"cost IS NULL AND {d.flag('cache_hit')} = 0 AND COALESCE(error, '') = ''"
    routed_top = (
        "CASE WHEN tier IS NOT NULL AND kind = 'llm' AND cost IS NOT NULL AND COALESCE(top_model, '') <> '' "
        "THEN top_model END"
    )
    cols = [
        *keys, "kind", "model", "service_tier", routed_top,
        "COUNT(*)", "MIN(ts)", "MIN(seq)", "MAX(ts)",
        *(f"SUM({u})" for u in _USAGE),
        f"SUM({d.flag('cache_hit')})",
        *d.money_sum("saved", f"{d.flag('cache_hit')} = 1 AND {d.nonzero('saved')}"),
        f"SUM({d.flag('estimated')})",
        "SUM(CASE WHEN COALESCE(error, '') <> '' THEN 1 ELSE 0 END)",
        f"SUM(CASE WHEN {unpriced} THEN 1 ELSE 0 END)", f"MIN(CASE WHEN {unpriced} THEN ts END)",
        "SUM(CASE WHEN cost IS NOT NULL THEN 1 ELSE 0 END)",
        *d.money_sum("cost", "cost IS NOT NULL"),
        "SUM(CASE WHEN cost IS NOT NULL THEN cache_read ELSE 0 END)",
        d.remainders,
    ]  # fmt: skip
    group = ", ".join(str(i + 1) for i in range(len(keys) + 4))
    return f"SELECT {', '.join(cols)} FROM {table}{where} GROUP BY {group}"


def _read_fine(d: Dialect, rows: list[Any], width: int) -> tuple[list[_Fine], int]:
    out = []
    remainders = 0
    m = d.money_width
    for r in rows:
        key = tuple(r[:width])
        v = list(r[width:])
        kind, model, tier, top, n, t0, s0, t1 = v[:8]
        usage = Usage(*(int(x or 0) for x in v[8:14]))
        i = 14
        cache_hits = int(v[i] or 0)
        saved = d.money(v[i + 1 : i + 1 + m])
        i += 1 + m
        estimated, errors, unpriced, unpriced_first, priced = v[i : i + 5]
        i += 5
        cost = d.money(v[i : i + m])
        i += m
        priced_cache_read, rem = v[i], v[i + 1]
        remainders += int(rem or 0)
        out.append(
            _Fine(key, kind, model, tier, top, int(n), (float(t0), int(s0)), float(t0), float(t1), usage,
                  cache_hits, saved, int(estimated or 0), int(errors or 0), int(unpriced or 0),
                  None if unpriced_first is None else float(unpriced_first), int(priced or 0), cost,
                  int(priced_cache_read or 0))
        )  # fmt: skip
    return out, remainders


def _add_long_parts(
    run: Run, d: Dialect, keys: Sequence[str], table: str, where: str, args: Sequence[Any],
    fines: list[_Fine], column: str, thresholds: dict[str, int], hourly: RollupTables | None,
) -> None:  # fmt: skip
    """Sum apart the calls above their model's long-context threshold: ``column`` ``model`` for prompt-cache
    savings (into each fine group's ``long_priced_cache_read``), ``top_model`` for routing (``long_usage``);
    from the hourly table when it keeps every threshold's class (``hourly``), else from the events."""
    if not thresholds:
        return
    if hourly is not None and not set(thresholds.values()) <= set(LONG_THRESHOLDS):
        return _add_long_parts(run, d, keys, table, where, args, fines, column, thresholds, None)
    parts, params = [], list(args)
    for name, threshold in sorted(thresholds.items()):
        if hourly is None:
            parts.append(f"({column} = {d.param} AND {_PROMPT} > {d.param})")
        else:  # the hourly table's routed top model is its own column; its prompt class is the threshold
            name_column = "routed_top" if column == "top_model" else column
            parts.append(f"({name_column} = {d.param} AND prompt_over >= {d.param})")
        params += [name, threshold]
    cond = _and(where, "(" + " OR ".join(parts) + ")")
    sql = _fine_sql(d, keys, table, cond) if hourly is None else hourly.fine_sql(list(keys), cond)
    longs, _ = _read_fine(d, run(sql, params), len(keys))
    by_id = {(f.key, f.kind, f.model, f.service_tier, f.top_model): f for f in fines}
    for lf in longs:
        f = by_id.get((lf.key, lf.kind, lf.model, lf.service_tier, lf.top_model))
        if f is None:  # a fine group this part does not value
            continue
        if column == "model":
            f.long_priced_cache_read = lf.priced_cache_read
        else:
            f.long_usage = lf.usage


def _probe(price: Any, long: bool) -> Usage:
    """A usage on the long-context side of ``price``'s threshold, or below it."""
    return Usage(input=price.long_context_threshold + 1) if long and price.long_context is not None else Usage()


def _minus(a: Usage, b: Usage) -> Usage:
    return Usage(*(getattr(a, u) - getattr(b, u) for u in _USAGE))


def _prompt_cache_saving(f: _Fine, catalog: Any) -> Decimal:
    """What the priced cache reads of ``f`` would have cost more at the full input price."""
    if not f.priced_cache_read:
        return _ZERO
    price = catalog.get(f.model)
    if price is None:
        return _ZERO
    total = _ZERO
    for reads, long in ((f.priced_cache_read - f.long_priced_cache_read, False), (f.long_priced_cache_read, True)):
        if reads:
            p = price.prices_for(_probe(price, long), f.service_tier)
            total += reads * (p.input - p.cache_read) / _PER_MILLION
    return total


def _top_cost(f: _Fine, catalog: Any) -> Decimal | None:
    """What the routed calls of ``f`` would have cost on the policy's top model (None: not priced)."""
    price = catalog.get(f.top_model)
    if price is None:
        return None
    total = _ZERO
    for usage, long in ((_minus(f.usage, f.long_usage), False), (f.long_usage, True)):
        total += price.prices_for(_probe(price, long), f.service_tier).cost(usage)
    return total


def _merge(row: RollupRow, f: _Fine, catalog: Any, unpriced: list[tuple[float, int, str | None, int]]) -> None:
    if f.kind not in CALL_KINDS:
        row.notices[f.kind] = row.notices.get(f.kind, 0) + f.n
        return
    row.calls += f.n
    row.usage = row.usage + f.usage
    row.cache_hits += f.cache_hits
    row.cache_savings += f.saved
    row.estimated_calls += f.estimated
    row.error_calls += f.errors
    row.unpriced_calls += f.unpriced
    if f.unpriced:
        unpriced.append((f.unpriced_first or 0.0, f.first[1], f.model, f.unpriced))
    row.priced_calls += f.priced
    row.cost += f.cost
    row.prompt_cache_savings += _prompt_cache_saving(f, catalog)
    if f.top_model is not None:
        top = _top_cost(f, catalog)
        if top is not None:
            row.routed_calls += f.n
            row.routed_cost += f.cost
            row.routing_savings += top - f.cost
    row.first_ts = f.first_ts if row.first_ts is None else min(row.first_ts, f.first_ts)
    row.last_ts = f.last_ts if row.last_ts is None else max(row.last_ts, f.last_ts)


def _unpriced_models(entries: list[tuple[float, int, str | None, int]]) -> list[str]:
    """Models of the unpriced calls in order of first appearance (as ``RollupRow.add`` lists them: a call
    with no model adds ``<unknown>`` each time)."""
    models: list[str] = []
    for _, _, model, n in sorted(entries, key=lambda e: (e[0], e[1])):
        if model is None:
            models += ["<unknown>"] * n
        elif model not in models:
            models.append(model)
    return models


def _fields(by: str | Sequence[str]) -> tuple[str, ...]:
    fields_ = (by,) if isinstance(by, str) else tuple(by)
    for f in fields_:
        if f not in GROUPABLE:
            raise ValueError(f"cannot group by {f!r}; choose from {sorted(GROUPABLE)}")
    return fields_


def sql_rollup(
    run: Run,
    d: Dialect,
    table: str,
    *,
    by: str | Sequence[str] = "feature",
    since: float | None = None,
    until: float | None = None,
    filters: dict[str, Any] | None = None,
    catalog: Any = None,
) -> Rollup | None:
    """The rollup of ``table``'s events in ``[since, until)`` matching ``filters``, computed by the
    database through ``run(sql, args) -> rows``; None when the ledger holds money the integer columns
    cannot sum (the caller then sums in Python)."""
    fields_ = _fields(by)
    if catalog is None:
        from ..prices import PriceCatalog

        catalog = PriceCatalog.default()
    keys = [d.bucket(f) if f in _BUCKETS else f for f in fields_]
    filters = dict(filters or {})
    where, args = where_clause(since, until, filters, d.param)
    whole = since is None and until is None
    # the rollup tables keep the whole ledger, by the fields FAST_FIELDS names
    tables = RollupTables(d, table) if whole and {*fields_, *filters} <= FAST_FIELDS else None
    sql = _fine_sql(d, keys, table, where) if tables is None else tables.fine_sql(keys, where)
    fines, remainders = _read_fine(d, run(sql, args), len(keys))
    if remainders:
        return None
    calls = [f for f in fines if f.kind in CALL_KINDS]
    _add_long_parts(run, d, keys, table, where, args, [f for f in calls if f.priced_cache_read], "model",
                    _thresholds(catalog, {f.model for f in calls if f.priced_cache_read}), tables)  # fmt: skip
    _add_long_parts(run, d, keys, table, where, args, [f for f in calls if f.top_model], "top_model",
                    _thresholds(catalog, {f.top_model for f in calls if f.top_model}), tables)  # fmt: skip
    groups: dict[tuple[Any, ...], RollupRow] = {}
    firsts: dict[tuple[Any, ...], tuple[float, int]] = {}
    unpriced: dict[tuple[Any, ...], list[tuple[float, int, str | None, int]]] = {}
    total = RollupRow(("total",))
    with localcontext() as ctx:
        ctx.prec = 60  # sums of exact sums stay exact
        for f in sorted(fines, key=lambda f: f.first):  # first appearance: dicts keep the Python rollup's order
            row = groups.setdefault(f.key, RollupRow(f.key))
            firsts[f.key] = min(firsts.get(f.key, f.first), f.first)
            _merge(row, f, catalog, unpriced.setdefault(f.key, []))
            _merge(total, f, catalog, unpriced.setdefault(("total",), []))
    for key, row in [*groups.items(), (("total",), total)]:
        row.unpriced_models = _unpriced_models(unpriced.get(key, []))
        row.prompt_cache_savings = canonical_money(row.prompt_cache_savings)
        row.routing_savings = canonical_money(row.routing_savings)
    _add_notice_subjects(run, d, keys, table, where, args, groups, total)
    by_feature = tables is not None and fields_ == ("feature",) and set(filters) <= {"feature"}
    # the total's sessions are the same whatever the grouping: the sessions table's unless filtered
    whole = tables is not None and (by_feature or not filters)
    _add_percentiles(run, d, keys, table, where, args, groups, total, tables if by_feature else None,
                     tables.sessions if tables is not None and whole else None)  # fmt: skip
    rows = sorted(groups.values(), key=lambda r: firsts[r.key])  # first appearance, as the Python rollup
    rows.sort(key=lambda r: (-r.cost, -r.calls, r.label))
    return Rollup(fields_, rows, total, since, until)


def _sessions_by_feature(
    run: Run, d: Dialect, sessions: str, where: str, args: Sequence[Any], groups: dict[Any, RollupRow] | None
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Per-session percentiles from the sessions table: per feature of ``groups``, or (None) over the
    report's total: each session's row over all its features, unless ``where`` keeps one feature."""
    if groups is None:
        scoped = _and(where, "whole = 0" if where else "whole = 1")
        n = int(run(f"SELECT COUNT(*) FROM {sessions}{scoped}", args)[0][0])
        return {(): per_session_at_ranks(run, d, sessions, scoped, args, n)}
    scoped = _and(where, "whole = 0")
    counts = {(r[0],): int(r[1]) for r in run(f"SELECT feature, COUNT(*) FROM {sessions}{scoped} GROUP BY feature", args)}
    return {
        key: per_session_at_ranks(run, d, sessions, _and(scoped, _feature_is(d, key[0])),
                                  [*args, *([] if key[0] is None else [key[0]])], counts.get(key, 0))
        for key in groups
    }  # fmt: skip


def _feature_is(d: Dialect, value: Any) -> str:
    return "feature IS NULL" if value is None else f"feature = {d.param}"


def _thresholds(catalog: Any, models: set[Any]) -> dict[str, int]:
    out = {}
    for m in models:
        price = catalog.get(m)
        if price is not None and price.long_context is not None:
            out[m] = int(price.long_context_threshold)
    return out


def _add_notice_subjects(
    run: Run, d: Dialect, keys: Sequence[str], table: str, where: str, args: Sequence[Any],
    groups: dict[tuple[Any, ...], RollupRow], total: RollupRow,
) -> None:  # fmt: skip
    if not any(k in NOTICE_KINDS for r in groups.values() for k in r.notices):
        return
    w = len(keys)
    group = ", ".join(str(i + 1) for i in range(w + 2))
    sql = (
        f"SELECT {''.join(f'{k}, ' for k in keys)}kind, extra, COUNT(*) FROM {table}{_and(where, _NOTICES)} "
        f"GROUP BY {group} ORDER BY MIN(ts), MIN(seq)"
    )
    for r in run(sql, args):
        key, kind, extra, n = tuple(r[:w]), r[w], r[w + 1], int(r[w + 2])
        extra = json.loads(extra) if isinstance(extra, str) else extra
        subject = (kind, notice_subject(CostEvent(model=None, kind=kind, extra=extra)))
        for row in (groups[key], total):
            row.notice_subjects[subject] = row.notice_subjects.get(subject, 0) + n


def _add_percentiles(
    run: Run, d: Dialect, keys: Sequence[str], table: str, where: str, args: Sequence[Any],
    groups: dict[tuple[Any, ...], RollupRow], total: RollupRow, by_feature: RollupTables | None,
    total_sessions: str | None,
) -> None:  # fmt: skip
    """Per-call and per-session percentiles of every group and of the total. ``by_feature``: the report
    groups by feature over the whole ledger (filtered by feature at most), so the per-call ones walk the
    indexes of calls' costs and the per-session ones read the sessions table. ``total_sessions``: the
    sessions table, which holds the total's per-session sums (the whole ledger, no filter but a feature)."""
    priced = _and(where, f"{_CALLS} AND cost IS NOT NULL")
    sessions = _and(priced, "session_id IS NOT NULL")
    indexed = _and(where, f"{d.cost_order().split(', ')[0]} IS NOT NULL AND {_CALLS}")  # the indexes' condition
    for target, ks in (("groups", keys), ("total", ())):
        if by_feature is not None and ks:
            calls = {
                (key[0],): per_call_at_ranks(run, d, table, _and(indexed, _feature_is(d, key[0])),
                                             [*args, *([] if key[0] is None else [key[0]])], row.priced_calls)
                for key, row in groups.items()
            }  # fmt: skip
        elif ks:
            calls = per_call(run, d, table, ks, priced, args)
        elif by_feature is not None or not where:  # along the index of all calls' costs
            calls = {(): per_call_at_ranks(run, d, table, indexed, args, total.priced_calls)}
        elif d.name == "sqlite":  # along the index of calls' costs (sqlite.REPORT_INDEXES), whose condition this names
            calls = {(): per_call_total(run, d, table, indexed, args, total.priced_calls)}
        else:
            calls = per_call(run, d, table, ks, priced, args)
        if by_feature is not None and ks:
            per_sess = _sessions_by_feature(run, d, by_feature.sessions, where, args, groups)
        elif total_sessions is not None and not ks:
            per_sess = _sessions_by_feature(run, d, total_sessions, where, args, None)
        else:
            per_sess = per_session(run, d, table, ks, sessions, args)
        rows = list(groups.items()) if target == "groups" else [((), total)]
        for key, row in rows:
            c, s = calls.get(key, {}), per_sess.get(key, {})
            row.per_call = {f"p{q}": c.get(f"p{q}") for q in QUANTILES}
            row.per_session = {f"p{q}": s.get(f"p{q}") for q in QUANTILES}
            row.sessions = int(s.get("n", 0))
