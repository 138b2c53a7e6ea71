"""Per-tool circuit breakers: stop calling a tool that keeps failing, and tell the agent why.

Each tool has its own circuit. ``closed``: calls go through, consecutive failures are counted.
After ``failure_threshold`` consecutive failures it turns ``open``: calls are refused for
``reset_timeout`` seconds. Then it is ``half_open``: exactly one probe call is let through (other
callers are refused while it is out); its success closes the circuit, its failure opens it again
for another ``reset_timeout``. A probe whose outcome is never reported is considered lost after
``reset_timeout`` and another probe is allowed.

A refused call is meant to reach the agent as a tool result it can adapt to
(:meth:`CircuitBreaker.unavailable_message`), not as a crash; :meth:`CircuitBreaker.call` raises
:class:`CircuitOpen` carrying that message for adapters to hand back.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from ..errors import ConfigurationError
from ..halts import AgentHalted, TerminationReason

__all__ = ["CircuitBreaker", "CircuitOpen", "CircuitState"]

logger = logging.getLogger(__name__)

CircuitState = Literal["closed", "open", "half_open"]
T = TypeVar("T")
_MAX_ERROR_TEXT = 200


class CircuitOpen(AgentHalted):
    """A call to ``tool`` was refused because its circuit is open (or its half-open probe is out).

    ``message`` is the text to hand the agent as the tool's result; ``details`` holds the tool,
    the consecutive failure count, the circuit state and ``retry_in`` seconds.
    """

    def __init__(self, tool: str, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(TerminationReason.CIRCUIT_OPEN, message, details={"tool": tool, **(details or {})})
        self.tool = tool
        self.message = message

    def __reduce__(self) -> Any:
        return (_rebuild_circuit_open, (self.tool, self.message, self.details))


def _rebuild_circuit_open(tool: str, message: str, details: dict[str, Any]) -> CircuitOpen:
    return CircuitOpen(tool, message, details=details)


@dataclass
class _Circuit:
    state: CircuitState = "closed"
    failures: int = 0  # consecutive
    opened_at: float = 0.0
    probe_started: float | None = None  # half-open probe out since (None: no probe out)
    last_error: str | None = None


_Change = tuple[str, str, str]


class CircuitBreaker:
    """One circuit per tool name; thread-safe.

    ``clock`` is a monotonic clock (inject one in tests); ``on_change(tool, old, new)`` is called
    after every state change, outside the breaker's lock; its exceptions are logged, never raised.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, str, str], Any] | None = None,
    ) -> None:
        if isinstance(failure_threshold, bool) or not isinstance(failure_threshold, int) or failure_threshold < 1:
            raise ConfigurationError(
                f"CircuitBreaker failure_threshold must be an integer >= 1, got {failure_threshold!r}"
            )
        if (
            isinstance(reset_timeout, bool)
            or not isinstance(reset_timeout, (int, float))
            or not math.isfinite(reset_timeout)
            or reset_timeout < 0
        ):
            raise ConfigurationError(
                f"CircuitBreaker reset_timeout must be a finite number of seconds >= 0, got {reset_timeout!r}"
            )
        if not callable(clock):
            raise ConfigurationError(f"CircuitBreaker clock must be callable, got {clock!r}")
        if on_change is not None and not callable(on_change):
            raise ConfigurationError(f"CircuitBreaker on_change must be callable or None, got {on_change!r}")
        self.failure_threshold = failure_threshold
        self.reset_timeout = float(reset_timeout)
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._circuits: dict[str, _Circuit] = {}

    # -- the state machine (every method below takes the lock, then notifies outside it) ------

    def allow(self, tool: str) -> bool:
        """May ``tool`` be called now? In half-open state a True answer takes the one probe slot:
        the caller must then report :meth:`record_success` or :meth:`record_failure`."""
        changes: list[_Change] = []
        with self._lock:
            c = self._circuits.get(tool)
            if c is None:
                return True
            now = self._clock()
            self._advance(tool, c, now, changes)
            if c.state == "closed":
                allowed = True
            elif c.state == "half_open" and (c.probe_started is None or now - c.probe_started >= self.reset_timeout):
                c.probe_started = now  # take the probe slot (or replace a lost probe)
                allowed = True
            else:
                allowed = False
        self._notify(changes)
        return allowed

    def record_success(self, tool: str) -> None:
        """The tool call succeeded: resets the failure count; a half-open probe closes the circuit."""
        changes: list[_Change] = []
        with self._lock:
            c = self._circuits.get(tool)
            if c is None:
                return
            self._advance(tool, c, self._clock(), changes)
            if c.state == "open":
                return  # a call let through before the circuit opened: not evidence the tool recovered
            if c.state == "half_open":
                self._set(tool, c, "closed", changes)
            c.failures = 0
            c.probe_started = None
            c.last_error = None
        self._notify(changes)

    def record_failure(self, tool: str, error: BaseException | str | None = None) -> None:
        """The tool call failed: counts a consecutive failure; at the threshold (or when a half-open
        probe fails) the circuit opens for ``reset_timeout`` seconds."""
        changes: list[_Change] = []
        with self._lock:
            c = self._circuits.setdefault(tool, _Circuit())
            now = self._clock()
            self._advance(tool, c, now, changes)
            c.failures += 1
            if error is not None:
                c.last_error = _describe(error)
            if c.state == "half_open" or (c.state == "closed" and c.failures >= self.failure_threshold):
                c.opened_at = now
                c.probe_started = None
                self._set(tool, c, "open", changes)
        self._notify(changes)

    def _release_probe(self, tool: str) -> None:
        """A probe ended without a verdict (cancelled, or halted on purpose): free the slot."""
        with self._lock:
            c = self._circuits.get(tool)
            if c is not None and c.state == "half_open":
                c.probe_started = None

    def state(self, tool: str) -> CircuitState:
        """``"closed"``, ``"open"`` or ``"half_open"`` (an open circuit whose timeout has passed)."""
        changes: list[_Change] = []
        with self._lock:
            c = self._circuits.get(tool)
            if c is None:
                return "closed"
            self._advance(tool, c, self._clock(), changes)
            result = c.state
        self._notify(changes)
        return result

    def retry_in(self, tool: str) -> float | None:
        """Seconds until a call to ``tool`` may be let through: ``None`` when the circuit is closed,
        ``0.0`` when a half-open probe is available, otherwise the time left (for a probe that is
        out, the latest time it is considered lost)."""
        with self._lock:
            c = self._circuits.get(tool)
            if c is None:
                return None
            return self._retry_in(c, self._clock())

    def _retry_in(self, c: _Circuit, now: float) -> float | None:
        if c.state == "closed":
            return None
        if c.state == "open":
            return max(0.0, c.opened_at + self.reset_timeout - now)
        if c.probe_started is None:
            return 0.0
        return max(0.0, c.probe_started + self.reset_timeout - now)

    def failures(self, tool: str) -> int:
        """The tool's current count of consecutive failures."""
        with self._lock:
            c = self._circuits.get(tool)
            return 0 if c is None else c.failures

    def unavailable_message(self, tool: str) -> str:
        """A tool result the agent can adapt to: the tool is temporarily unavailable, why, when it
        may be retried, and to try another approach or tool meanwhile."""
        return _message(tool, *self._snapshot(tool))

    def _snapshot(self, tool: str) -> tuple[CircuitState, int, str | None, float | None]:
        """(state, consecutive failures, last error, retry_in) read at one instant."""
        changes: list[_Change] = []
        with self._lock:
            c = self._circuits.get(tool)
            if c is None:
                return "closed", 0, None, None
            now = self._clock()
            self._advance(tool, c, now, changes)
            snapshot = (c.state, c.failures, c.last_error, self._retry_in(c, now))
        self._notify(changes)
        return snapshot

    def reset(self, tool: str | None = None) -> None:
        """Close one tool's circuit (or every circuit) and forget its failures."""
        changes: list[_Change] = []
        with self._lock:
            tools = [tool] if tool is not None else list(self._circuits)
            for name in tools:
                c = self._circuits.pop(name, None)
                if c is not None and c.state != "closed":
                    changes.append((name, c.state, "closed"))
        self._notify(changes)

    def _advance(self, tool: str, c: _Circuit, now: float, changes: list[_Change]) -> None:
        if c.state == "open" and now - c.opened_at >= self.reset_timeout:
            c.probe_started = None
            self._set(tool, c, "half_open", changes)

    @staticmethod
    def _set(tool: str, c: _Circuit, new: CircuitState, changes: list[_Change]) -> None:
        if c.state != new:
            changes.append((tool, c.state, new))
            c.state = new

    def _notify(self, changes: list[_Change]) -> None:
        for tool, old, new in changes:
            log = logger.warning if new == "open" else logger.info
            log("circuit for tool %r: %s -> %s", tool, old, new)
            if self._on_change is None:
                continue
            try:
                self._on_change(tool, old, new)
            except Exception:
                logger.exception("CircuitBreaker on_change listener failed for tool %r (%s -> %s)", tool, old, new)

    # -- wrapping a call ----------------------------------------------------------------------

    def _refuse(self, tool: str) -> CircuitOpen:
        state, failures, last_error, wait = self._snapshot(tool)
        details = {"failures": failures, "state": state, "retry_in": wait, "last_error": last_error}
        return CircuitOpen(tool, _message(tool, state, failures, last_error, wait), details=details)

    def call(self, tool: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` through ``tool``'s circuit: raises :class:`CircuitOpen` when
        refused, otherwise records the outcome and returns the result or re-raises the tool's error."""
        if not self.allow(tool):
            raise self._refuse(tool)
        try:
            result = fn(*args, **kwargs)
        except AgentHalted:
            self._release_probe(tool)  # a deliberate halt says nothing about the tool
            raise
        except Exception as e:
            self.record_failure(tool, e)
            raise
        except BaseException:
            self._release_probe(tool)
            raise
        self.record_success(tool)
        return result

    async def acall(self, tool: str, fn: Callable[..., Awaitable[T] | T], *args: Any, **kwargs: Any) -> T:
        """:meth:`call` for coroutine functions (a plain function's result is used as is)."""
        if not self.allow(tool):
            raise self._refuse(tool)
        try:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        except AgentHalted:
            self._release_probe(tool)
            raise
        except Exception as e:
            self.record_failure(tool, e)
            raise
        except BaseException:  # cancellation: no verdict on the tool
            self._release_probe(tool)
            raise
        self.record_success(tool)
        return result  # type: ignore[return-value]


def _message(tool: str, state: CircuitState, failures: int, last_error: str | None, wait: float | None) -> str:
    if state == "closed":
        return f"Tool '{tool}' is available."
    times = "time" if failures == 1 else "times"
    text = f"Tool '{tool}' is temporarily unavailable: it failed {failures} {times} in a row"
    text += f" (last error: {last_error})." if last_error else "."
    if state == "half_open" and wait:
        text += f" It is being re-tested now; it may be retried in about {_seconds(wait)} at the latest."
    elif wait:
        text += f" It may be retried in about {_seconds(wait)}."
    else:
        text += " It may be retried now."
    return text + " Until then, do not call it again: try another approach or a different tool."


def _describe(error: BaseException | str) -> str:
    text = (
        error
        if isinstance(error, str)
        else (f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
    )
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 1] + "…"


def _seconds(value: float) -> str:
    n = max(1, math.ceil(value))
    return "1 second" if n == 1 else f"{n} seconds"
