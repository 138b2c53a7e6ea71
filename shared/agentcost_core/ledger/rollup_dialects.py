"""The SQL a rollup needs from each database: the time buckets, exact money sums, money ordering and
integer ranks, for SQLite (integer money columns, see .money_columns) and PostgreSQL (``NUMERIC``).

Every piece is a fragment of SQL text over the ``events`` layout of schema version 4; the values
users pass (filters, the time window) are always parameters, never text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .money_columns import from_sums

__all__ = ["POSTGRES", "SQLITE", "Dialect"]

_ZERO = Decimal(0)


@dataclass(frozen=True)
class Dialect:
    name: str
    param: str
    #: ``strftime``-style formats of the time buckets, by field.
    buckets: dict[str, str]
    #: How many result columns one money sum takes.
    money_width: int

    def bucket(self, field: str) -> str:
        fmt = self.buckets[field]
        if self.name == "sqlite":
            return f"strftime('{fmt}', ts, 'unixepoch')"
        return f"to_char(to_timestamp(ts) AT TIME ZONE 'UTC', '{fmt}')"

    def flag(self, column: str) -> str:
        """A stored boolean as 0 / 1."""
        return column if self.name == "sqlite" else f"{column}::int"

    def money_sum(self, name: str, when: str) -> list[str]:
        """Result columns summing money column ``name`` (``cost`` or ``saved``) over rows where ``when``."""
        if self.name == "sqlite":
            return [f"SUM(CASE WHEN {when} THEN {name}_{part} END)" for part in ("nanos", "attos")] + [
                f"MIN(CASE WHEN {when} THEN {name}_exp END)"
            ]
        return [f"SUM(CASE WHEN {when} THEN {name} END)"]

    def money(self, parts: Sequence[Any], start: Decimal = _ZERO) -> Decimal:
        """The Decimal of one :meth:`money_sum`'s columns added to ``start``, with the digits Python's
        one-by-one Decimal sum would have."""
        if self.name == "sqlite":
            return from_sums(parts[0], parts[1], parts[2], start=start)
        return start if parts[0] is None else start + parts[0]

    def nonzero(self, name: str) -> str:
        """``name`` (a money column) is set and not zero."""
        if self.name == "sqlite":
            return f"({name}_nanos <> 0 OR {name}_attos <> 0)"
        return f"{name} <> 0"

    @property
    def remainders(self) -> str:
        """Rows whose money has digits the integer columns do not hold (SQLite: see .money_columns)."""
        return "SUM(cost_rem IS NOT NULL OR saved_rem IS NOT NULL)" if self.name == "sqlite" else "0"

    def cost_order(self) -> str:
        """One event's cost, in numeric order."""
        return "cost_nanos, cost_attos" if self.name == "sqlite" else "cost"

    def sum_order(self, parts: Sequence[str]) -> str:
        """A sum of :meth:`money_sum` columns named ``parts``, in numeric order."""
        if self.name == "sqlite":
            n, a = parts[0], parts[1]
            return f"{n} + {a} / 1000000000, {a} % 1000000000"
        return parts[0]

    def rank(self, q: int, n: str) -> str:
        """The nearest rank of percentile ``q`` among ``n`` sorted values (as ``rollup.percentile``)."""
        greatest, least = ("MAX", "MIN") if self.name == "sqlite" else ("GREATEST", "LEAST")
        return f"{greatest}(1, {least}({n}, ({q * 1000} * {n} + 99999) / 100000))"


SQLITE = Dialect("sqlite", "?", {"day": "%Y-%m-%d", "hour": "%Y-%m-%d %H:00", "month": "%Y-%m"}, money_width=3)
POSTGRES = Dialect(
    "postgresql", "%s", {"day": "YYYY-MM-DD", "hour": "YYYY-MM-DD HH24:00", "month": "YYYY-MM"}, money_width=1
)
