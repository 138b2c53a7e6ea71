"""Money in a form a database sums exactly (schema version 4, SQLite).

SQLite has no exact decimal type: a cost is kept as TEXT (every digit) and, beside it, as integers
SQLite's ``SUM`` adds exactly: whole nano-dollars (``<name>_nanos``), the atto-dollars below them
(``<name>_attos``, 0 ≤ attos < 10⁹) and the Decimal exponent of the stored value (``<name>_exp``), so
a sum is rebuilt with the same digits Python's ``Decimal`` sum would have. A value with digits below
10⁻¹⁸ dollars (never a catalog price times tokens, but possible with a user's price file) keeps the
exact remainder in ``<name>_rem`` (TEXT); a rollup that meets one falls back to summing in Python.

``SUM(nanos)`` stays inside SQLite's 64-bit integers up to $9.2 billion; ``SUM(attos)`` for 9.2 billion
calls. PostgreSQL keeps costs in ``NUMERIC``, whose ``SUM`` is already exact: it needs none of this.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal, localcontext
from typing import Any

__all__ = ["MONEY_COLUMNS", "from_sums", "money_values", "split", "split_text"]

#: The integer columns of each money field (``cost``, ``saved``), in the order :func:`money_values` fills.
MONEY_COLUMNS = tuple(f"{name}_{part}" for name in ("cost", "saved") for part in ("nanos", "attos", "exp", "rem"))
_NANOS_PER_DOLLAR = 10**9
_ATTOS_PER_NANO = 10**9
_NONE = (None, None, None, None)
#: Enough digits for any sum of up to 10¹⁰ costs below $10⁹ carried to 10⁻¹⁸.
_PREC = 60


def split(value: Decimal | None) -> tuple[int | None, int | None, int | None, str | None]:
    """``(nanos, attos, exponent, remainder)`` of an exact dollar amount (all None for None)."""
    if value is None or not value.is_finite():
        return _NONE
    with localcontext() as ctx:
        ctx.prec = _PREC
        scaled = value.scaleb(18)
        whole = scaled.to_integral_value(rounding=ROUND_FLOOR)
        rest = scaled - whole
    nanos, attos = divmod(int(whole), _ATTOS_PER_NANO)
    exponent = value.as_tuple().exponent
    rem = None if not rest else format(rest.scaleb(-18), "f")
    return nanos, attos, int(exponent), rem  # type: ignore[arg-type]


_SCALE = [10**k for k in range(19)]


def split_text(text: str | None) -> tuple[int | None, int | None, int | None, str | None]:
    """:func:`split` of a Decimal's ``str`` (what the ledger stores), by string operations where they
    suffice: the writer runs this for every event (about 1 µs, against 5 µs through Decimal)."""
    if text is None:
        return _NONE
    whole, _, frac = text.partition(".")
    places = len(frac)
    if places > 18 or "E" in text or "-" in text or "N" in text or "n" in text:
        return split(Decimal(text))
    nanos, attos = divmod(int(whole + frac) * _SCALE[18 - places], _ATTOS_PER_NANO)
    return nanos, attos, -places, None


def money_values(cost_text: str | None, saved_text: str | None) -> tuple[Any, ...]:
    """The values of :data:`MONEY_COLUMNS` for one event, from the stored text of its cost and saving."""
    return (*split_text(cost_text), *split_text(saved_text))


def from_sums(nanos: int | None, attos: int | None, min_exp: int | None, *, start: Decimal = Decimal(0)) -> Decimal:
    """``start`` plus the sum rebuilt from ``SUM(nanos)``, ``SUM(attos)`` and ``MIN(exp)``: the same value
    and digits as adding the Decimals one by one to ``start`` (the exponent of a Decimal sum is the
    smallest of its terms')."""
    if nanos is None:
        return start
    with localcontext() as ctx:
        ctx.prec = _PREC
        value = Decimal(int(nanos) * _ATTOS_PER_NANO + int(attos or 0)).scaleb(-18) + start
        exponent = min(int(min_exp if min_exp is not None else 0), start.as_tuple().exponent)  # type: ignore[type-var]
        return value.quantize(Decimal(1).scaleb(exponent))
