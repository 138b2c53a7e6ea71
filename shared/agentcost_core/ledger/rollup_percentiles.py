"""Exact nearest-rank percentiles in the database: per call (one event's cost) and per session (the sum
of a session's costs), per group, by window functions; only the rows at the wanted ranks come back.

Ties are broken by event order (``ts``, then ``seq``), as Python's stable sort of the events would."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from .rollup_dialects import Dialect

__all__ = ["QUANTILES", "per_call", "per_call_total", "per_session"]

QUANTILES = (50, 95, 99)
Run = Callable[[str, Sequence[Any]], list[Any]]
Key = tuple[Any, ...]


def _wanted(d: Dialect) -> str:
    return " OR ".join(f"rn = {d.rank(q, 'n')}" for q in QUANTILES)


def _partition(width: int) -> str:
    return f"PARTITION BY {', '.join(f'k{i}' for i in range(width))} " if width else ""


def _pick(rows: list[Any], width: int, value: Callable[[Any], Decimal], d: Dialect) -> dict[Key, dict[str, Any]]:
    """``{key: {"p50": …, "p95": …, "p99": …, "n": count}}`` from rows ``(k…, value…, rn, n)``."""
    out: dict[Key, dict[str, Any]] = {}
    for r in rows:
        key = tuple(r[:width])
        rn, n = int(r[-2]), int(r[-1])
        got = out.setdefault(key, {"n": n})
        for q in QUANTILES:
            if _rank(q, n) == rn:
                got[f"p{q}"] = value(r)
    return out


def per_call(
    run: Run, d: Dialect, table: str, keys: Sequence[str], where: str, args: Sequence[Any]
) -> dict[Key, dict[str, Any]]:
    """Percentiles of one call's cost, per group of ``keys`` (SQL expressions; none: over everything)."""
    cols = "".join(f"{k} AS k{i}, " for i, k in enumerate(keys))
    ks = "".join(f"k{i}, " for i in range(len(keys)))
    part = _partition(len(keys))
    order = d.cost_order()
    sql = (
        f"SELECT {ks}cost, rn, n FROM (SELECT {ks}cost, "
        f"ROW_NUMBER() OVER ({part}ORDER BY {order}, ts, seq) AS rn, COUNT(*) OVER ({part.strip()}) AS n "
        f"FROM (SELECT {cols}{', '.join(dict.fromkeys(['cost', *order.split(', ')]))}, ts, seq "
        f"FROM {table}{where}) e) ranked WHERE {_wanted(d)}"
    )
    return _pick(run(sql, args), len(keys), lambda r: Decimal(r[len(keys)]), d)


def _rank(q: int, n: int) -> int:
    return max(1, min(n, -(-q * 1000 * n // 100_000)))


def per_call_total(run: Run, d: Dialect, table: str, where: str, args: Sequence[Any], n: int) -> dict[str, Any]:
    """Percentiles of one call's cost over all ``n`` priced calls ``where`` selects. ``where`` names the
    condition of SQLite's ``events_call_cost`` index, whose order is the ranks' order: the ranks are
    numbered along the index, without a sort and without reading the table but for the three rows."""
    if not n:
        return {"n": 0}
    ranks = {q: _rank(q, n) for q in QUANTILES}
    marks = ", ".join(d.param for _ in ranks)
    sql = (
        f"SELECT e.cost, r.rn FROM (SELECT seq, rn FROM (SELECT seq, ROW_NUMBER() OVER "
        f"(ORDER BY {d.cost_order()}, ts, seq) AS rn FROM {table}{where}) ranked WHERE rn IN ({marks})) r "
        f"JOIN {table} e ON e.seq = r.seq"
    )
    by_rank = {int(rn): Decimal(cost) for cost, rn in run(sql, [*args, *ranks.values()])}
    return {"n": n, **{f"p{q}": by_rank[r] for q, r in ranks.items()}}


def per_session(
    run: Run, d: Dialect, table: str, keys: Sequence[str], where: str, args: Sequence[Any]
) -> dict[Key, dict[str, Any]]:
    """Percentiles of a session's summed cost, per group of ``keys``; ``n`` is the number of sessions."""
    w = len(keys)
    cols = "".join(f"{k} AS k{i}, " for i, k in enumerate(keys))
    ks = "".join(f"k{i}, " for i in range(w))
    money = d.money_sum("cost", "1 = 1")
    names = [f"m{i}" for i in range(len(money))]
    sums = ", ".join(f"{m} AS {n}" for m, n in zip(money, names))
    group = ", ".join([*(f"k{i}" for i in range(w)), "session_id"])
    part = _partition(w)
    sql = (
        f"SELECT {ks}{', '.join(names)}, rn, n FROM (SELECT s.*, "
        f"ROW_NUMBER() OVER ({part}ORDER BY {d.sum_order(names)}, t0, q0) AS rn, COUNT(*) OVER ({part.strip()}) AS n "
        f"FROM (SELECT {cols}session_id, {sums}, MIN(ts) AS t0, MIN(seq) AS q0 FROM {table}{where} "
        f"GROUP BY {group}) s) ranked WHERE {_wanted(d)}"
    )
    return _pick(run(sql, args), w, lambda r: d.money(r[w : w + len(money)]), d)


def per_call_at_ranks(run: Run, d: Dialect, table: str, where: str, args: Sequence[Any], n: int) -> dict[str, Any]:
    """Percentiles of one call's cost over the ``n`` priced calls ``where`` selects, read along an index
    whose order is the ranks' order (``where`` names its condition: SQLite's ``events_call_cost`` or a
    feature's ``<events>_feature_cost``): each rank is reached from the nearer end of the index, so a
    report reads at most half of it per percentile and never sorts."""
    if not n:
        return {"n": 0}
    order = [*d.cost_order().split(", "), "ts", "seq"]
    out: dict[str, Any] = {"n": n}
    for q in QUANTILES:
        r = _rank(q, n)
        desc = r > (n + 1) // 2
        by = ", ".join(f"{c} DESC" if desc else c for c in order)
        sql = (
            f"SELECT cost FROM {table} WHERE seq = (SELECT seq FROM {table}{where} ORDER BY {by} "
            f"LIMIT 1 OFFSET {d.param})"
        )
        out[f"p{q}"] = Decimal(run(sql, [*args, n - r if desc else r - 1])[0][0])
    return out


def per_session_at_ranks(
    run: Run, d: Dialect, sessions: str, where: str, args: Sequence[Any], n: int
) -> dict[str, Any]:
    """Percentiles of a session's summed cost over the ``n`` rows of the sessions table (rollup_tables.py)
    ``where`` selects (one ``whole`` and at most one feature), read along its rank index as
    :func:`per_call_at_ranks` reads calls: the rows hold the sums, in (sum, first ts, first seq) order."""
    if not n:
        return {"n": 0}
    money = d.cost_order().split(", ")
    names = [*money, "cost_exp"] if d.name == "sqlite" else money
    out: dict[str, Any] = {"n": n}
    for q in QUANTILES:
        r = _rank(q, n)
        desc = r > (n + 1) // 2
        by = ", ".join(f"{c} DESC" if desc else c for c in [*money, "ts", "seq"])
        sql = f"SELECT {', '.join(names)} FROM {sessions}{where} ORDER BY {by} LIMIT 1 OFFSET {d.param}"
        out[f"p{q}"] = d.money(run(sql, [*args, n - r if desc else r - 1])[0])
    return out
