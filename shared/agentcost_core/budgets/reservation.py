"""What one call holds in the budget stores between its reservation and its settle or release."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .budget import Budget, ScopeContext

if TYPE_CHECKING:
    from .stores.base import Claim, CounterStore

__all__ = ["Reservation"]


@dataclass(slots=True, weakref_slot=True)
class Reservation:
    """What one call holds in each store until it is settled or released (exactly once)."""

    ctx: ScopeContext
    model: str | None
    amounts: tuple[int, int, int, int]
    worst_case_usd: Decimal
    groups: list[tuple[CounterStore, list[Claim], list[Budget]]] = field(default_factory=list)
    #: Set when a fail-open store could not be reached: the call went ahead unbudgeted there.
    store_errors: list[str] = field(default_factory=list)
    done: bool = False
    cost: Decimal | None = None  # what settle() counted
    #: The id its holds carry in shared stores (leases); None when every store is in-process.
    lease_id: str | None = field(default=None, repr=False)
    #: The asyncio task it was made in, while that task may still have to release it.
    task: Any = field(default=None, repr=False, compare=False)

    @property
    def flags(self) -> dict[str, Any]:
        """Extra ledger fields for the call's event (empty in the normal case)."""
        return {"budget_store_unavailable": list(self.store_errors)} if self.store_errors else {}
