"""What a handler guards every run with: :class:`Controls` holds the budgets (a
:class:`~agentcost_core.budgets.BudgetEnforcer`), the stuck detector, the kill switch and the circuit
breaker, shared by every run; :meth:`Controls.start` gives the :class:`~.run_guard.RunGuard` of one run."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterable

from ..accountant import Accountant
from ..budgets import Budget, BudgetEnforcer, ScopeContext
from ..errors import ConfigurationError
from ..halts import CallRefused
from .circuit_breaker import CircuitBreaker
from .kill_switch import KillSwitch
from .stuck import StuckDetector

if TYPE_CHECKING:
    from .run_guard import RunGuard

__all__ = ["ON_INTERNAL_ERROR", "Controls"]

ON_INTERNAL_ERROR = ("refuse", "allow")

logger = logging.getLogger("agentcost")


class Controls:
    """What to enforce on every run: ``budgets`` (a Budget, several, or a BudgetEnforcer),
    ``stuck`` (a StuckDetector, or True for the defaults), ``kill_switch`` (a KillSwitch, or True
    for the ``AGENTCOST_KILL_SWITCH`` environment variable), ``breaker`` (a CircuitBreaker, or True
    for the defaults)."""

    def __init__(
        self,
        *,
        budgets: Budget | Iterable[Budget] | BudgetEnforcer | None = None,
        stuck: StuckDetector | bool | None = None,
        kill_switch: KillSwitch | bool | None = None,
        breaker: CircuitBreaker | bool | None = None,
        ledger: Any = None,
        on_internal_error: str = "refuse",
        **enforcer_options: Any,
    ) -> None:
        if on_internal_error not in ON_INTERNAL_ERROR:
            raise ConfigurationError(f"on_internal_error must be one of {ON_INTERNAL_ERROR}, got {on_internal_error!r}")
        #: With a hard budget, what an internal error of ours before a call does: ``refuse`` the
        #: call (:class:`CallRefused`), or ``allow`` it through unreserved (logged and counted).
        self.on_internal_error = on_internal_error
        self.internal_errors = 0
        if budgets is None or isinstance(budgets, BudgetEnforcer):
            if enforcer_options and budgets is not None:
                raise ConfigurationError(f"options {sorted(enforcer_options)} go to BudgetEnforcer(...) itself")
            self.enforcer = budgets
        else:
            self.enforcer = BudgetEnforcer(budgets, **enforcer_options)
        if self.enforcer is None and enforcer_options:
            raise ConfigurationError(f"unknown option(s) {sorted(enforcer_options)} (budget options need budgets=)")
        self.stuck = StuckDetector() if stuck is True else (stuck or None)
        self.kill_switch = KillSwitch() if kill_switch is True else (kill_switch or None)
        self.breaker = CircuitBreaker() if breaker is True else (breaker or None)
        for name, value, cls in (
            ("stuck", self.stuck, StuckDetector),
            ("kill_switch", self.kill_switch, KillSwitch),
            ("breaker", self.breaker, CircuitBreaker),
        ):
            if value is not None and not isinstance(value, cls):
                raise ConfigurationError(f"{name}= takes a {cls.__name__} (or True), got {type(value).__name__}")
        self.ledger = ledger
        self.framework: str | None = None
        #: Prompt logging of the adapter that attached (None until one does; off counts as off):
        #: tool arguments in guard events are kept only when it is on (see agentcost_core.privacy).
        self.log_prompts: bool | None = None

    @property
    def anomalies(self) -> Any:
        """The budgets' spend anomaly detector (``BudgetEnforcer(anomalies=...)``), for the recorder
        of the adapter that records the calls, or None."""
        return None if self.enforcer is None else self.enforcer.anomalies

    @property
    def active(self) -> bool:
        return any(x is not None for x in (self.enforcer, self.stuck, self.kill_switch, self.breaker))

    def attach(self, ledger: Any, framework: str | None, accountant: Accountant | None = None, *,
               log_prompts: bool = False) -> None:  # fmt: skip
        """Give the controls the adapter's ledger (so warnings, actions and halts are events too),
        its accountant (so budgets price with the catalog the ledger prices with) and its prompt
        logging switch. The first adapter to attach wins; attaching again changes nothing."""
        if self.ledger is None:
            self.ledger = ledger
        if self.framework is None:
            self.framework = framework
        if self.log_prompts is None:
            self.log_prompts = log_prompts
        if self.enforcer is not None:
            if self.enforcer.ledger is None:
                self.enforcer.ledger = self.ledger
            if self.enforcer.framework is None:
                self.enforcer.framework = self.framework
            if accountant is not None:
                self.enforcer.use_accountant(accountant)

    def internal_error_before_call(self, e: Exception) -> None:
        """An internal error of ours before a model call: logged and counted; under hard budgets
        with ``on_internal_error="refuse"`` the call is refused (:class:`CallRefused`) rather than
        let through unreserved."""
        self.internal_errors += 1
        logger.error("agentcost internal error before a model call: %r", e, exc_info=e)
        if self.hard_budgets and self.on_internal_error == "refuse":
            raise CallRefused(
                f"agentcost could not check the budget for this call ({type(e).__name__}: {e}); the call is refused "
                "rather than run unreserved (Controls(on_internal_error='allow') lets such calls through)"
            ) from e

    @property
    def accountant(self) -> Accountant | None:
        return self.enforcer.accountant if self.enforcer is not None else None

    @property
    def hard_budgets(self) -> bool:
        return self.enforcer is not None and any(b.hard for b in self.enforcer.budgets)

    def start(self, ctx: ScopeContext) -> RunGuard:
        from .run_guard import RunGuard  # run_guard imports this module: the run's class is looked up here

        return RunGuard(self, ctx)
