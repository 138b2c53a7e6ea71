"""Exporters: where every recorded call goes besides the ledger (``exporters=[...]``).

An exporter is any object with ``export(event, call, outcome)``: the recorder calls it once per
recorded event, right after the ledger got it, with the :class:`~agentcost_core.CostEvent` and —
for a model call — its :class:`~agentcost_core.call.ModelCall` and
:class:`~agentcost_core.call.Outcome` (``None`` for other kinds of events). Two optional hooks:
``tool(name, start_ns, end_ns, error=..., attribution=...)`` for a finished tool call, and
``agent_run(name, attribution)``, a context manager around a guarded run yielding an object with
``finish(events, reason)``. :class:`~agentcost_core.otel.OTelExporter` is the built-in one.

An exporter that raises never breaks the user's call: the fault is counted and logged (at most
once a minute per :class:`Exporters`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

__all__ = ["Exporter", "Exporters"]

logger = logging.getLogger("agentcost")

_LOG_EVERY_S = 60.0


class Exporter(Protocol):
    def export(self, event: Any, call: Any, outcome: Any) -> None: ...


class AgentRun:
    """What :meth:`Exporters.agent_run` yields: ``finish(events, reason)`` hands the run's events
    (and its termination reason, if it was halted) to every exporter's run before it ends."""

    __slots__ = ("_owner", "_runs")

    def __init__(self, runs: Sequence[Any], owner: Exporters) -> None:
        self._runs = runs
        self._owner = owner

    def finish(self, events: Sequence[Any], reason: Any = None) -> None:
        for run in self._runs:
            try:
                run.finish(events, reason)
            except Exception as exc:  # noqa: BLE001 - an exporter never breaks the call
                self._owner.failed(run, "agent_run.finish", exc)


class Exporters:
    """The exporters of one recorder, each called in turn; their faults are caught and counted."""

    __slots__ = ("_last_log", "errors", "items")

    def __init__(self, exporters: Iterable[Any]) -> None:
        items = tuple(exporters)
        for e in items:
            if not callable(getattr(e, "export", None)):
                raise TypeError(f"an exporter needs an export(event, call, outcome) method, got {type(e).__name__}")
        self.items = items
        self.errors = 0
        self._last_log = float("-inf")

    @classmethod
    def of(cls, exporters: Any) -> Exporters | None:
        """``exporters=`` as given (None, a list or tuple of exporters, or an :class:`Exporters`):
        None when there are none, so that recording pays nothing for them."""
        if exporters is None or isinstance(exporters, Exporters):
            return exporters or None
        if not isinstance(exporters, (list, tuple)):
            raise TypeError(f"exporters must be a list of exporters, got {type(exporters).__name__}")
        found = cls(exporters)
        return found if found.items else None

    def __bool__(self) -> bool:
        return bool(self.items)

    def __repr__(self) -> str:
        return f"Exporters({', '.join(type(e).__name__ for e in self.items)})"

    def failed(self, exporter: Any, where: str, exc: BaseException) -> None:
        """An exporter's fault: counted, and logged at most once a minute."""
        self.errors += 1
        now = time.monotonic()
        if now - self._last_log >= _LOG_EVERY_S:
            self._last_log = now
            logger.error("agentcost: exporter %s failed in %s (%d failures so far): %r",
                         type(exporter).__name__, where, self.errors, exc, exc_info=exc)  # fmt: skip

    # --- the hooks ----------------------------------------------------------------------------
    def event(self, event: Any, call: Any = None, outcome: Any = None) -> None:
        for e in self.items:
            try:
                e.export(event, call, outcome)
            except Exception as exc:  # noqa: BLE001 - an exporter never breaks the call
                self.failed(e, "export", exc)

    def tool(self, name: str, start_ns: int, end_ns: int, *, error: BaseException | None = None,
             attribution: Any = None) -> None:  # fmt: skip
        """A finished tool call, from ``start_ns`` to ``end_ns`` (``time.time_ns()``)."""
        for e in self.items:
            hook = getattr(e, "tool", None)
            if hook is None:
                continue
            try:
                hook(name, start_ns, end_ns, error=error, attribution=attribution)
            except Exception as exc:  # noqa: BLE001 - an exporter never breaks the call
                self.failed(e, "tool", exc)

    @contextmanager
    def agent_run(self, name: str, attribution: Any = None) -> Iterator[AgentRun]:
        """Around one guarded run: every exporter's ``agent_run`` is entered (an OTel exporter
        makes its agent span current, so the run's model and tool spans are its children)."""
        entered: list[tuple[Any, AbstractContextManager[Any]]] = []
        runs: list[Any] = []
        for e in self.items:
            hook = getattr(e, "agent_run", None)
            if hook is None:
                continue
            try:
                cm = hook(name, attribution)
                runs.append(cm.__enter__())
                entered.append((e, cm))
            except Exception as exc:  # noqa: BLE001 - an exporter never breaks the call
                self.failed(e, "agent_run", exc)
        error: BaseException | None = None
        try:
            yield AgentRun(runs, self)
        except BaseException as exc:
            error = exc
            raise
        finally:
            for e, cm in reversed(entered):
                try:
                    if error is None:
                        cm.__exit__(None, None, None)
                    else:
                        cm.__exit__(type(error), error, error.__traceback__)
                except Exception as exc:  # noqa: BLE001 - an exporter never breaks the call
                    self.failed(e, "agent_run exit", exc)
