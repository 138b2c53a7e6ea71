"""Spend anomalies: :class:`SpendAnomalies` watches every recorded model call and alerts when spend
departs from its baseline — and, when asked, trips the kill switch for that agent or feature.

Rules (each alerts once per kind and key per ``cooldown``, 15 minutes by default):

- ``spike``: one call costs ≥ ``spike_factor`` (10) × the average call of its (agent, feature)
  over the last 24 hours (with at least ``min_baseline_requests`` calls in it);
- ``burst``: the last 15 minutes' average call costs ≥ ``burst_factor`` (3) × the 24-hour
  baseline's average, over ≥ ``burst_min_requests`` (10) calls;
- ``rate``: the last 15 minutes' spend, as an hourly rate, is ≥ ``rate_factor`` (3) × the rolling
  hourly average of the 24-hour baseline (at least ``min_baseline_hours`` of it);
- ``user_budget``: a user has spent ≥ ``user_fraction`` (90%) of ``user_daily_usd`` this UTC day.

The baselines come from the ledger: read once when the detector is attached (the last 24 hours of
model calls), then kept up to date from each recorded call, so they survive restarts. The recorder
of a handler given ``anomalies=`` feeds every event here (see :mod:`agentcost_core.recorder`).
Each anomaly is an :class:`~agentcost_core.alerts.Alert` to the sinks and an ``anomaly.<rule>``
event in the ledger. With ``trip=KillSwitch(...)`` the rules in ``trip_on`` also trip the kill switch
for the call's agent (or feature, ``trip_by="feature"``) through its shared store (file or Redis), so
every process stops before its next call; it stays tripped until reset by hand
(``agentcost killswitch reset --agent A``). Trips and sinks never raise into a call; the trip's
write runs on a background thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from ..errors import ConfigurationError
from ..events import CostEvent
from .alert import Alert, AlertSink, deliver, sinks_of
from .baselines import SpendWindow
from .outbox import Outbox

__all__ = ["RULES", "SpendAnomalies"]

logger = logging.getLogger("agentcost.alerts")

RULES = ("spike", "burst", "rate", "user_budget")
_DAY = 86_400
_MAX_KEYS = 100_000


def _factor(name: str, value: Any, *, low: float = 1.0) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)) or not low < value < math.inf:
        raise ConfigurationError(f"SpendAnomalies {name} must be a number above {low:g}, got {value!r}")
    return Decimal(str(value))


def _seconds(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 60 <= value < math.inf:
        raise ConfigurationError(f"SpendAnomalies {name} must be a number of seconds >= 60, got {value!r}")
    return int(value)


def _money(value: Decimal) -> str:
    return f"${value.quantize(Decimal('0.00000001')).normalize():f}"


class SpendAnomalies:
    """``SpendAnomalies(*, alerts=None, ledger=None, trip=None, trip_on=("spike", "burst", "rate"),
    trip_by="agent", user_daily_usd=None, clock=time.time, ...)`` — pass it as ``anomalies=`` to a
    handler (``CostCallbackHandler``, ``track_costs``, ``guard``, ``instrument``, ``BudgetEnforcer``).

    ``alerts``: sinks as for budgets (None: logging); ``ledger``: where baselines are read from and
    anomaly events written (default: the ledger of the handler it is attached to); ``clock``: wall
    clock in epoch seconds (injectable for tests); the thresholds are keywords named after the rules
    (see the module docstring)."""

    def __init__(
        self,
        *,
        alerts: AlertSink | Sequence[AlertSink] | None = None,
        ledger: Any = None,
        trip: Any = None,
        trip_on: Sequence[str] = ("spike", "burst", "rate"),
        trip_by: str = "agent",
        spike_factor: float = 10,
        burst_factor: float = 3,
        burst_min_requests: int = 10,
        rate_factor: float = 3,
        min_baseline_requests: int = 10,
        min_baseline_hours: float = 1.0,
        user_daily_usd: Decimal | str | int | None = None,
        user_fraction: float = 0.9,
        window: float = 900,
        horizon: float = _DAY,
        cooldown: float = 900,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sinks = sinks_of(alerts)
        self.spike_factor = _factor("spike_factor", spike_factor)
        self.burst_factor = _factor("burst_factor", burst_factor)
        self.rate_factor = _factor("rate_factor", rate_factor)
        self.user_fraction = _factor("user_fraction", user_fraction, low=0.0)
        for name, value in (
            ("burst_min_requests", burst_min_requests),
            ("min_baseline_requests", min_baseline_requests),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"SpendAnomalies {name} must be a whole number >= 1, got {value!r}")
        self.burst_min_requests = burst_min_requests
        self.min_baseline_requests = min_baseline_requests
        self.min_baseline_minutes = int(_factor("min_baseline_hours", min_baseline_hours, low=0.0) * 60)
        if user_daily_usd is not None:
            try:
                if isinstance(user_daily_usd, (bool, float)):
                    raise InvalidOperation
                user_daily_usd = Decimal(str(user_daily_usd))
            except InvalidOperation:
                raise ConfigurationError(
                    f"SpendAnomalies user_daily_usd takes a Decimal, str or int (money is never a float), got {user_daily_usd!r}"
                ) from None
            if not user_daily_usd > 0:
                raise ConfigurationError(f"SpendAnomalies user_daily_usd must be > 0, got {user_daily_usd}")
        self.user_daily_usd: Decimal | None = user_daily_usd
        self.window_minutes = _seconds("window", window) // 60
        self.horizon_minutes = _seconds("horizon", horizon) // 60
        if self.horizon_minutes <= self.window_minutes:
            raise ConfigurationError("SpendAnomalies horizon must be longer than window")
        self.cooldown = _seconds("cooldown", cooldown)
        if not callable(clock):
            raise ConfigurationError(f"SpendAnomalies clock must be callable, got {clock!r}")
        self.clock = clock
        if trip is not None:
            from ..guards.kill_switch import KillSwitch

            if not isinstance(trip, KillSwitch):
                raise ConfigurationError(f"SpendAnomalies trip= takes a KillSwitch, got {type(trip).__name__}")
        self.trip = trip
        unknown = set(trip_on) - set(RULES) if not isinstance(trip_on, str) else {trip_on}
        if unknown:
            raise ConfigurationError(f"SpendAnomalies trip_on takes rule names from {RULES}, got {sorted(unknown)}")
        self.trip_on = frozenset(trip_on)
        if trip_by not in ("agent", "feature"):
            raise ConfigurationError(f"SpendAnomalies trip_by must be 'agent' or 'feature', got {trip_by!r}")
        self.trip_by = trip_by
        self.ledger = None
        self._lock = threading.Lock()
        self._windows: dict[tuple[str | None, str | None], SpendWindow] = {}
        self._users: dict[str, list[Any]] = {}  # user -> [UTC day, spent that day]
        self._last_fired: dict[tuple[str, str], float] = {}
        self._outbox = Outbox("agentcost-anomaly-breaker", maxsize=100)
        if ledger is not None:
            self.attach(ledger)

    # --- baselines --------------------------------------------------------------------------
    def attach(self, ledger: Any) -> None:
        """Use ``ledger`` (when none was given) and read the baselines from it, once."""
        with self._lock:
            if self.ledger is not None:
                return
            self.ledger = ledger
        now = self.clock()
        try:
            events = ledger.events(since=now - self.horizon_minutes * 60, kind="llm")
        except Exception as e:  # noqa: BLE001 - no baseline yet is not an error of the user's
            logger.error("agentcost anomalies: could not read baselines from the ledger: %r", e)
            return
        with self._lock:
            for event in sorted(events, key=lambda e: e.ts):
                if event.cost is not None:
                    self._count(event, event.ts)

    def _window(self, event: CostEvent) -> SpendWindow:
        key = (event.agent_id, event.feature)
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) >= _MAX_KEYS:
                self._windows = {k: w for k, w in self._windows.items() if not w.idle}
            window = self._windows[key] = SpendWindow(window_minutes=self.window_minutes,
                                                      horizon_minutes=self.horizon_minutes)  # fmt: skip
        return window

    def _count(self, event: CostEvent, ts: float) -> Decimal | None:
        """Add one call to its window and its user's day; the user's spend today (or None)."""
        self._window(event).add(int(ts // 60), event.cost)  # type: ignore[arg-type]
        if self.user_daily_usd is None or not event.user_id:
            return None
        day = int(ts // _DAY)
        entry = self._users.get(event.user_id)
        if entry is None or entry[0] != day:
            if len(self._users) >= _MAX_KEYS:
                self._users = {u: x for u, x in self._users.items() if x[0] == day}
            entry = self._users[event.user_id] = [day, Decimal(0)]
        entry[1] += event.cost
        return entry[1]

    # --- the call path ----------------------------------------------------------------------
    def observe(self, event: CostEvent) -> None:
        """Count one recorded event and alert on the rules it breaks; never raises."""
        if event.kind != "llm" or event.cost is None:
            return
        try:
            for alert, target in self._check(event):
                self._announce(alert, target, event)
        except Exception as e:
            logger.error("agentcost anomalies: internal error: %r", e, exc_info=e)

    def _check(self, event: CostEvent) -> list[tuple[Alert, tuple[str, str] | None]]:
        now = self.clock()
        minute = int(now // 60)
        cost: Decimal = event.cost  # type: ignore[assignment]
        with self._lock:
            w = self._window(event)
            w.advance(minute)
            found = [self._spike(w, cost, _who(event))]  # against the baseline before this call
            today = self._count(event, now)
            found += [self._burst(w, _who(event)), self._rate(w, minute, _who(event)), self._user(event, today)]
            fired = [f for f in found if f is not None and self._cooled(f.rule, f.key, now)]
        out = []
        for f in fired:
            target = self._target(event) if self.trip is not None and f.rule in self.trip_on else None
            message = f.message
            if target is not None:
                flag = "--agent" if target[0] == "agent" else "--feature"
                message += f"; kill switch tripped for {target[0]} {target[1]!r} (reset: agentcost killswitch reset {flag} {target[1]})"
            attribution = {"agent_id": event.agent_id, "feature": event.feature, "user_id": event.user_id}
            alert = Alert(
                kind=f"anomaly.{f.rule}",
                severity="critical" if target else "error",
                message=message,
                attribution={k: v for k, v in attribution.items() if v is not None},
                value=f.value,
                baseline=f.baseline,
                at=now,
            )
            out.append((alert, target))
        return out

    def _spike(self, w: SpendWindow, cost: Decimal, who: str) -> _Finding | None:
        average = w.average
        if w.count < self.min_baseline_requests or not average or cost < self.spike_factor * average:
            return None
        message = (
            f"one call of {who} cost {_money(cost)}, {cost / average:.1f}× its 24-hour average of {_money(average)}"
        )
        return _Finding("spike", who, cost, average, message + " per call")

    def _burst(self, w: SpendWindow, who: str) -> _Finding | None:
        if w.recent_count < self.burst_min_requests or w.baseline_count < self.min_baseline_requests:
            return None
        if not w.baseline_sum > 0:
            return None
        recent, base = w.recent_sum / w.recent_count, w.baseline_sum / w.baseline_count
        if recent < self.burst_factor * base:
            return None
        message = (
            f"{who} averaged {_money(recent)} per call over its last {w.recent_count} calls "
            f"({self.window_minutes} min), {recent / base:.1f}× its 24-hour baseline of {_money(base)}"
        )
        return _Finding("burst", who, recent, base, message)

    def _rate(self, w: SpendWindow, minute: int, who: str) -> _Finding | None:
        minutes = w.baseline_minutes(minute)
        if minutes < max(self.min_baseline_minutes, 1) or not w.baseline_sum > 0:
            return None
        hourly = w.baseline_sum * 60 / minutes
        rate = w.recent_sum * 60 / self.window_minutes
        if rate < self.rate_factor * hourly:
            return None
        message = (
            f"{who} is spending {_money(rate)}/h over the last {self.window_minutes} min, "
            f"{rate / hourly:.1f}× its rolling hourly average of {_money(hourly)}"
        )
        return _Finding("rate", who, rate, hourly, message)

    def _user(self, event: CostEvent, today: Decimal | None) -> _Finding | None:
        daily = self.user_daily_usd
        if today is None or daily is None or today < self.user_fraction * daily:
            return None
        message = (
            f"user {event.user_id!r} has spent {_money(today)} today, "
            f"{today / daily:.0%} of the {_money(daily)} daily budget"
        )
        return _Finding("user_budget", f"user {event.user_id!r}", today, daily, message)

    def _cooled(self, rule: str, key: str, now: float) -> bool:
        last = self._last_fired.get((rule, key))
        if last is not None and now - last < self.cooldown:
            return False
        if len(self._last_fired) >= _MAX_KEYS:
            self._last_fired = {k: t for k, t in self._last_fired.items() if now - t < self.cooldown}
        self._last_fired[(rule, key)] = now
        return True

    def _target(self, event: CostEvent) -> tuple[str, str] | None:
        order = (("agent", event.agent_id), ("feature", event.feature))
        for what, name in order if self.trip_by == "agent" else order[::-1]:
            if name:
                return what, name
        return None

    def _announce(self, alert: Alert, target: tuple[str, str] | None, event: CostEvent) -> None:
        if target is not None:
            what, name = target
            reason = f"agentcost {alert.kind}: {alert.message}"
            switch = self.trip

            def trip() -> None:
                try:
                    if what == "agent":
                        switch.trip(agent_id=name, reason=reason)
                    else:
                        switch.trip(feature=name, reason=reason)
                except Exception as e:  # noqa: BLE001 - the alert still went out; say the stop did not
                    logger.error("agentcost anomalies: could not trip the kill switch for %s %r: %r", what, name, e)

            self._outbox.submit(trip)
        deliver(alert, self.sinks)
        if self.ledger is not None:
            try:
                self.ledger.record(CostEvent(
                    None, kind=alert.kind, user_id=event.user_id, session_id=event.session_id, feature=event.feature,
                    agent_id=event.agent_id, trace_id=event.trace_id, framework=event.framework,
                    extra=alert.as_dict(),
                ))  # fmt: skip
            except Exception as e:  # noqa: BLE001 - defensive
                logger.error("agentcost anomalies: could not record an anomaly event: %r", e)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the kill-switch trips asked for so far are written (tests, shutdown)."""
        return self._outbox.flush(timeout)

    def __repr__(self) -> str:
        return (f"SpendAnomalies(spike_factor={self.spike_factor}, burst_factor={self.burst_factor}, "
                f"rate_factor={self.rate_factor}, trip={self.trip!r})")  # fmt: skip


class _Finding(NamedTuple):
    """A rule's verdict for one call: ``key`` is what the cooldown counts per (agent/feature, user)."""

    rule: str
    key: str
    value: Decimal
    baseline: Decimal
    message: str


def _who(event: CostEvent) -> str:
    parts = [f"agent {event.agent_id!r}" if event.agent_id else None,
             f"feature {event.feature!r}" if event.feature else None]  # fmt: skip
    named = [p for p in parts if p]
    return " / ".join(named) if named else "unattributed calls"
