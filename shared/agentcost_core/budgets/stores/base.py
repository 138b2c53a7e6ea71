"""The counter-store interface every budget backend implements.

A store keeps, per key, what has been **spent** (settled) and what is **held** by open
reservations, in four integer dimensions (:data:`DIMENSIONS`), plus when the key saw its first
reservation (for wall-clock limits). USD is counted in integer units of ``1e-10`` dollars
(:func:`usd_to_units`): exact for every catalog price, and exact in Redis' Lua numbers up to
$900,000 per key; finer amounts round up, so a store never under-counts.

The three operations are atomic across all the keys of one call (a call usually falls under
several budgets: its session, its user's day, the global day):

* :meth:`CounterStore.reserve` — admit the call only if, for every hard claim and every limited
  dimension, ``spent + held + amount <= limit``; then hold the amounts on every key. A claim that
  does not fit is refused whole; it is never shrunk to fit.
* :meth:`CounterStore.settle` — move a reservation from held to spent at its real amounts.
* :meth:`CounterStore.release` — drop a reservation (error, cancellation) without spending.

**Leases.** A reservation made with a :class:`Lease` is also recorded as its own hold, under the
lease id, with an expiry. Expired holds are swept (taken off ``held``) atomically whenever their key
is reserved against or read, so a hold whose owner died (a killed process, a task that never came
back) is gone after its lease. :meth:`CounterStore.renew` pushes the expiry of a live call's hold
forward. Settling or releasing with the lease id acts on that hold only: a hold already swept is not
subtracted twice (its spend is still added), and ``held`` never goes below zero. Without a lease a
reservation never expires (the amounts are then subtracted as given).

What a shared store does when it cannot be reached is the user's choice: ``fail_closed``
(default: the call is refused with :class:`BudgetStoreUnavailable`) or ``fail_open`` (the call
goes ahead, and its ledger event is flagged).
"""

from __future__ import annotations

import inspect
import weakref
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Sequence

from ...errors import AgentCostError, ConfigurationError
from ..off_loop import off_loop

__all__ = [
    "DIMENSIONS",
    "FAILURE_MODES",
    "BudgetStoreUnavailable",
    "Claim",
    "CounterStore",
    "Counters",
    "Lease",
    "ReserveResult",
    "units_to_usd",
    "usd_to_units",
]

DIMENSIONS = ("usd", "tokens", "model_calls", "tool_calls")
FAILURE_MODES = ("fail_closed", "fail_open")
USD_QUANTUM = Decimal("1e-10")
_UNITS_PER_USD = Decimal(10_000_000_000)

Vector = tuple[int, int, int, int]
Limits = tuple["int | None", "int | None", "int | None", "int | None"]
ZERO: Vector = (0, 0, 0, 0)


def usd_to_units(usd: Decimal) -> int:
    """Dollars → integer store units of 1e-10 USD, rounded up."""
    return int((usd * _UNITS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


def units_to_usd(units: int) -> Decimal:
    return Decimal(units) / _UNITS_PER_USD


class BudgetStoreUnavailable(AgentCostError):
    """A shared counter store (Redis, PostgreSQL, SQLite) could not be reached or answered with
    an error, and the store is ``fail_closed``: the call is refused rather than let through
    unbudgeted."""


@dataclass(frozen=True, slots=True)
class Claim:
    """One budget's share of a call: its counter key, its limits and the amounts to hold."""

    key: str
    limits: Limits
    amounts: Vector
    ttl: int | None = None  # seconds until the key may expire (end of its period); None: never
    hard: bool = True  # soft claims (notify / downgrade) are counted but never refused


@dataclass(frozen=True, slots=True)
class Lease:
    """A reservation's own hold: its id (unique per reservation) and when it expires unless renewed."""

    id: str
    expires: float


@dataclass(frozen=True, slots=True)
class Counters:
    """One key's state: settled spend, amounts held by open reservations, first use time."""

    spent: Vector = ZERO
    held: Vector = ZERO
    started: float | None = None

    def committed(self, i: int) -> int:
        return self.spent[i] + self.held[i]


@dataclass(frozen=True, slots=True)
class ReserveResult:
    admitted: bool
    #: Per claim, the counters after the reservation (or as they stood, when refused).
    counters: tuple[Counters, ...]
    refused: int | None = None  # index of the claim that did not fit
    dimension: int | None = None  # index into DIMENSIONS


def fits(counters: Counters, claim: Claim) -> int | None:
    """The first limited dimension in which ``claim`` does not fit, else None."""
    if not claim.hard:
        return None
    for i, limit in enumerate(claim.limits):
        if limit is not None and claim.amounts[i] and counters.spent[i] + counters.held[i] + claim.amounts[i] > limit:
            return i
    return None


def hold(state: dict[str, tuple[Counters, float | None]], claims: Sequence[Claim], now: float) -> list[Counters]:
    """Add every claim's amounts to what its key holds in ``state`` (key -> (counters, expires)),
    extending (never shortening) the key's expiry; returns the counters after, per claim. For stores
    that read all of a call's keys, decide with :func:`fits`, then write them back."""
    after = []
    for claim in claims:
        c, expires = state[claim.key]
        c = Counters(c.spent, add(c.held, claim.amounts), c.started or now)
        if claim.ttl is not None:
            expires = max(expires or 0.0, now + claim.ttl)
        state[claim.key] = (c, expires)
        after.append(c)
    return after


_TAKES: weakref.WeakKeyDictionary[CounterStore, tuple[bool, bool]] = weakref.WeakKeyDictionary()


def _takes(store: CounterStore) -> tuple[bool, bool]:
    """(reserve takes a lease, read takes now): False for a store, or a subclass of a built-in one,
    whose methods keep the interface from before leases (it is driven the old way)."""
    found = _TAKES.get(store)
    if found is None:
        found = _TAKES[store] = (
            store.leases and len(inspect.signature(store.reserve).parameters) >= 3,
            store.leases and len(inspect.signature(store.read).parameters) >= 2,
        )
    return found


def takes_leases(store: CounterStore) -> bool:
    """True when reservations in ``store`` are leases: a shared store that keeps leased holds."""
    return store.shared and _takes(store)[0]


def read_counters(store: CounterStore, key: str, now: float) -> Counters:
    """``key``'s counters in ``store``, its expired leases swept as of ``now`` (a store that keeps
    no leases is read as it reads)."""
    return store.read(key, now) if _takes(store)[1] else store.read(key)


def check_timeout(what: str, timeout: object) -> float:
    """A store's deadline in seconds: a finite number > 0, else a :class:`ConfigurationError`."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
        raise ConfigurationError(f"{what} timeout must be a number of seconds > 0, got {timeout!r}")
    return float(timeout)


def add(a: Sequence[int], b: Sequence[int], sign: int = 1) -> Vector:
    return (a[0] + sign * b[0], a[1] + sign * b[1], a[2] + sign * b[2], a[3] + sign * b[3])


class CounterStore(ABC):
    """Atomic multi-key reserve / settle / release. Subclasses implement the sync methods; the
    async forms run them in a worker thread unless a subclass does better."""

    #: ``"fail_closed"`` or ``"fail_open"``: what the enforcer does when this store raises
    #: :class:`BudgetStoreUnavailable`.
    failure_mode: str = "fail_closed"
    #: True for stores whose counters are shared between processes.
    shared: bool = False
    #: True for stores that keep leased holds (every built-in store); the enforcer leases the
    #: reservations it makes in shared stores that do.
    leases: bool = False

    def _check_failure_mode(self, failure_mode: str) -> str:
        if failure_mode not in FAILURE_MODES:
            raise ConfigurationError(f"failure_mode must be one of {FAILURE_MODES}, got {failure_mode!r}")
        return failure_mode

    @abstractmethod
    def reserve(self, claims: Sequence[Claim], now: float, lease: Lease | None = None) -> ReserveResult:
        """Hold every claim's amounts if all hard claims fit; else change nothing. With ``lease``,
        the hold is recorded under ``lease.id`` and expires at ``lease.expires`` unless renewed."""

    @abstractmethod
    def settle(self, claims: Sequence[Claim], actual: Vector, lease_id: str | None = None) -> tuple[Counters, ...]:
        """Per claim: spent += actual, and held -= the reservation's hold (its lease's amounts when
        ``lease_id`` is given and the hold has not expired; ``claim.amounts`` without a lease).
        ``actual`` may be negative (with zero claim amounts) to give back what a settle counted
        (an interrupted tool call). Returns the counters after."""

    def release(self, claims: Sequence[Claim], lease_id: str | None = None) -> tuple[Counters, ...]:
        """Drop the reservation: held -= its hold, nothing spent."""
        return self.settle(claims, ZERO, lease_id)

    def renew(self, claims: Sequence[Claim], lease_id: str, expires: float) -> bool:
        """Move the lease's expiry to ``expires`` on every claim's key; False when its hold is gone
        (settled, released or already expired: a renewal never re-creates a hold)."""
        return False

    @abstractmethod
    def read(self, key: str, now: float | None = None) -> Counters:
        """A key's counters (zeros when it has none), expired leases swept as of ``now``
        (default: the wall clock)."""

    @abstractmethod
    def reset(self, key: str | None = None) -> None:
        """Forget one key, or every key of this store (tests, a new period by hand)."""

    # The async forms run the sync calls off the event loop and are safe to cancel: a reservation
    # the worker makes after its awaiting task was cancelled is released as the worker finishes,
    # and a cancelled settle / release still runs to the end.
    async def areserve(self, claims: Sequence[Claim], now: float, lease: Lease | None = None) -> ReserveResult:
        def undo(result: ReserveResult) -> None:
            if result.admitted:
                self.release(claims, lease.id if lease is not None else None)

        return await off_loop(self.reserve, claims, now, lease, undo=undo)  # type: ignore[no-any-return]

    async def asettle(self, claims: Sequence[Claim], actual: Vector, lease_id: str | None = None) -> tuple[Counters, ...]:
        return await off_loop(self.settle, claims, actual, lease_id)  # type: ignore[no-any-return]

    async def arelease(self, claims: Sequence[Claim], lease_id: str | None = None) -> tuple[Counters, ...]:
        return await off_loop(self.release, claims, lease_id)  # type: ignore[no-any-return]

    async def aread(self, key: str, now: float | None = None) -> Counters:
        return await off_loop(self.read, key, now)  # type: ignore[no-any-return]

    def pending_cancels(self) -> int:
        """How many reservations this store gave up on (a reserve, settle or release that ran out
        of time) still wait for their cancel to reach the server; 0 for stores that never need one."""
        return 0

    def close(self) -> None:  # noqa: B027 - optional for stores holding connections
        """Release connections."""
