"""The kill switch: one flag an operator flips to stop every agent, or chosen agents or features,
before their next model or tool call.

A :class:`KillSwitch` reads any combination of sources; it is tripped when any of them says so:

- an environment variable (default ``AGENTCOST_KILL_SWITCH``),
- a file (a missing file means "off"),
- a Redis key (a missing key means "off"),
- an HTTP(S) URL answering ``GET`` with JSON.

Two formats are understood (the URL speaks JSON only):

- text: ``1`` / ``true`` / ``all`` / ``*`` trips every agent; ``""`` / ``0`` / ``false`` is off;
  anything else is a comma-separated list of the agent ids to stop;
- JSON: ``{"global": bool, "agents": [ids], "features": [names], "reason": str}`` (every key
  optional; a feature's trip stops every agent working on that feature).

What the sources say is cached for ``ttl`` seconds (5) per instance, so :meth:`KillSwitch.check` is
a read of memory. The environment variable is read again by the checking thread once the cache is
``ttl`` old (no I/O). The file, the Redis key and the URL are read by one background daemon thread
per instance, never by the thread that checks (an event loop included): it starts on the first
check, reads every ``ttl`` seconds, and stops on :meth:`KillSwitch.close` (or when the instance is
garbage-collected). A trip is seen within ``ttl`` plus one read.

Before the first reading has arrived, a check from an ordinary thread waits for it at most
``timeout`` seconds; a check on an event loop never waits. A source not read yet counts as off with
``on_error="open"`` and as tripped with ``on_error="closed"`` (call :meth:`KillSwitch.start` early,
e.g. at startup, so the first reading is in before the first agent runs). A source that cannot be
read keeps its last known state (``on_error="open"``) or counts as tripped for every agent
(``on_error="closed"``); either way a warning is logged once until it recovers.

``ttl=0`` turns the cache off: every check reads every source on the checking thread. It is allowed
only with the environment variable and a file (local sources), for tests and local tooling; Redis
and URL sources need ``ttl > 0``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigurationError
from ..halts import AgentHalted, TerminationReason
from ..privacy import redact_text, redact_url
from .kill_switch_sources import (
    EnvSource,
    FileSource,
    KillSwitchState,
    KillSwitchUnreadable,
    Malformed,
    RedisSource,
    Source,
    UrlSource,
    Writable,
    connect_redis,
)
from .refresher import Refresher

__all__ = ["KillSwitch", "KillSwitchState", "KillSwitchUnreadable"]

logger = logging.getLogger(__name__)


class KillSwitch:
    """Stops agents on an operator's word; call :meth:`check` before every model and tool call.

    ``env`` names an environment variable (``None`` turns that source off); ``file`` a file;
    ``redis_url`` or ``redis_client`` a Redis server whose ``redis_key`` holds the state; ``url`` an
    HTTP(S) endpoint answering JSON. ``ttl`` is how long one reading is trusted, ``timeout`` the
    network timeout in seconds, ``clock`` a monotonic clock (injectable for tests). ``on_error``:
    ``"open"`` keeps an unreadable source's last known state, ``"closed"`` treats it as tripped.

    The file, Redis and URL sources are read by one daemon thread per instance, named
    ``agentcost-kill-switch``, started by the first check (or :meth:`start`) and stopped by
    :meth:`close` (or ``with KillSwitch(...) as ks:``); it also ends when the instance is dropped.
    """

    def __init__(
        self,
        *,
        env: str | None = "AGENTCOST_KILL_SWITCH",
        file: str | os.PathLike[str] | None = None,
        redis_url: str | None = None,
        redis_key: str = "agentcost:kill_switch",
        redis_client: Any = None,
        url: str | None = None,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 2.0,
        on_error: Literal["open", "closed"] = "open",
    ) -> None:
        _check_seconds("ttl", ttl, allow_zero=True)
        _check_seconds("timeout", timeout, allow_zero=False)
        if on_error not in ("open", "closed"):
            raise ConfigurationError(f"KillSwitch on_error must be 'open' or 'closed', got {on_error!r}")
        if not callable(clock):
            raise ConfigurationError(f"KillSwitch clock must be callable, got {clock!r}")
        if ttl == 0 and (redis_url is not None or redis_client is not None or url is not None):
            raise ConfigurationError(
                "KillSwitch ttl=0 (read on every check) is only for the environment variable and a file; "
                "Redis and URL sources are read in the background and need ttl > 0"
            )
        self._ttl = float(ttl)
        self._clock = clock
        self._on_error = on_error
        self._sources: list[Source] = []
        self._writable: list[Writable] = []

        if env is not None:
            if not isinstance(env, str) or not env:
                raise ConfigurationError(f"KillSwitch env must be a variable name or None, got {env!r}")
            self._sources.append(EnvSource(env))
        if file is not None:
            path = Path(file)
            if path.is_dir():
                raise ConfigurationError(f"KillSwitch file {str(path)!r} is a directory")
            file_source = FileSource(path)
            self._sources.append(file_source)
            self._writable.append(file_source)
        if redis_url is not None or redis_client is not None:
            if redis_url is not None and redis_client is not None:
                raise ConfigurationError("KillSwitch takes redis_url or redis_client, not both")
            if not isinstance(redis_key, str) or not redis_key:
                raise ConfigurationError(f"KillSwitch redis_key must be a non-empty string, got {redis_key!r}")
            client = redis_client if redis_client is not None else connect_redis(redis_url, float(timeout))
            redis_source = RedisSource(client, redis_key)
            self._sources.append(redis_source)
            self._writable.append(redis_source)
        if url is not None:
            parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigurationError(f"KillSwitch url must be an http:// or https:// URL, got {redact_url(url)!r}")
            self._sources.append(UrlSource(url, float(timeout)))
        if not self._sources:
            raise ConfigurationError("KillSwitch needs at least one source: env, file, redis_url/redis_client or url")

        # the environment variable (and, with ttl=0, the file) is read by the checking thread; the
        # rest by a background thread that writes its readings here
        self._inline = [x for x in self._sources if isinstance(x, EnvSource) or self._ttl == 0]
        self._remote = [x for x in self._sources if x not in self._inline]
        self._timeout = float(timeout)
        self._lock = threading.Lock()  # guards the cached states below
        self._inline_cache: tuple[float, tuple[KillSwitchState, ...]] | None = None
        self._remote_states: dict[str, KillSwitchState] = {}  # source name -> last reading
        self._written: dict[str, int] = {}  # source name -> version of this instance's last trip/reset
        self._version = 0
        self._last: dict[str, KillSwitchState] = {}  # last good reading per source, for on_error="open"
        self._failing: set[str] = set()  # sources already warned about
        self._refresher: Refresher | None = None
        if self._remote:
            self._refresher = Refresher(self._read_remote, period=self._ttl, clock=clock, name="agentcost-kill-switch")
            weakref.finalize(self, self._refresher.close, 0).atexit = False

    @property
    def sources(self) -> tuple[str, ...]:
        """The configured sources' names, in the order they are read."""
        return tuple(s.name for s in self._sources)

    # -- reading ------------------------------------------------------------------------------

    def check(self, agent_id: str | None = None, feature: str | None = None) -> None:
        """Raise :class:`AgentHalted` (``TerminationReason.KILL_SWITCH``) when this agent (or its
        ``feature``) must stop.

        With ``agent_id=None`` and ``feature=None`` only a global trip applies. Reads the cached
        state: no I/O on the calling thread (see the module docstring for the first check).
        """
        for s in self._current():
            if s.applies_to(agent_id, feature):
                if s.is_global:
                    who = "all agents"
                elif agent_id is not None and agent_id in s.agents:
                    who = f"agent {agent_id!r}"
                else:
                    who = f"feature {feature!r}"
                details = {"source": s.source, "agent_id": agent_id, "reason": s.reason, "global": s.is_global}
                if feature is not None:
                    details["feature"] = feature
                raise AgentHalted(
                    TerminationReason.KILL_SWITCH,
                    f"Kill switch is on for {who} (source: {s.source}; reason: {s.reason or 'none given'}). "
                    "The agent was stopped before its next model or tool call.",
                    details=details,
                )

    def is_tripped(self, agent_id: str | None = None, feature: str | None = None) -> bool:
        """True when :meth:`check` would raise for this agent (or feature)."""
        return any(s.applies_to(agent_id, feature) for s in self._current())

    def state(self) -> KillSwitchState:
        """Every source's word combined: global if any says so, the union of the agents and features, the first
        reason given, and the names of the sources that are tripped."""
        return _combine(self._current())

    def refresh(self) -> KillSwitchState:
        """Read every source now on the calling thread, ignoring the cache (blocking I/O: not for
        an event loop); returns the combined state."""
        started = self._clock()
        inline = self._read_inline()
        self._read_remote()
        if self._refresher is not None:
            self._refresher.read_elsewhere(started)  # this reading counts: no second one right after
        return _combine(inline + self._remote_current(wait=False))

    def read_now(self) -> KillSwitchState:
        """Read every source now on the calling thread (blocking I/O: not for an event loop), for
        tooling that must not guess, such as ``agentcost killswitch status``: a source that cannot be
        read raises :class:`KillSwitchUnreadable` instead of ``on_error`` deciding, and nothing is
        logged. Returns the combined state; the cached state :meth:`check` reads is left as it is."""
        states = []
        for source in self._sources:
            try:
                states.append(source.read())
            except Exception as e:  # unreachable, timed out, malformed: the state is unknown
                why = f"malformed content ({e})" if isinstance(e, Malformed) else f"{type(e).__name__}: {e}"
                raise KillSwitchUnreadable(source.name, redact_text(why)) from e
        return _combine(tuple(states))

    def start(self) -> None:
        """Start the background reading of the file, Redis and URL sources now (the first check
        otherwise does); with it, the first reading is usually in before the first agent runs."""
        if self._refresher is not None:
            self._refresher.start()

    @property
    def refreshes(self) -> int:
        """How many background readings have completed."""
        return self._refresher.count if self._refresher is not None else 0

    def wait_for_refresh(self, timeout: float | None = None, *, after: int | None = None) -> bool:
        """Wait for a background reading: a new one asked for now, or (``after=n``) any reading
        past the first ``n``. True when it landed, False after ``timeout`` seconds. Blocks: not for
        an event loop (tests, startup)."""
        if self._refresher is None:
            self._read_inline()
            return True
        self._refresher.start()
        if after is None:
            after = self._refresher.count
            self._refresher.request()
        return self._refresher.wait(after=after, timeout=timeout)

    def close(self) -> None:
        """Stop the background thread (a later check starts no new one; readings stay as last seen)."""
        if self._refresher is not None:
            self._refresher.close()

    def __enter__(self) -> KillSwitch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _current(self) -> tuple[KillSwitchState, ...]:
        cache = self._inline_cache
        if cache is not None and self._clock() - cache[0] < self._ttl:
            inline = cache[1]
        else:
            inline = self._read_inline()
        return inline + self._remote_current(wait=True)

    def _read_inline(self) -> tuple[KillSwitchState, ...]:
        started = self._clock()
        states = tuple(self._read(source) for source in self._inline)
        self._inline_cache = (started, states)
        return states

    def _remote_current(self, *, wait: bool) -> tuple[KillSwitchState, ...]:
        refresher = self._refresher
        if refresher is None:
            return ()
        refresher.start()
        with self._lock:
            states = dict(self._remote_states)
        if len(states) < len(self._remote) and wait and not _on_event_loop():
            refresher.wait(after=0, timeout=self._timeout)  # the first reading, bounded
            with self._lock:
                states = dict(self._remote_states)
        elif refresher.stale():
            refresher.request()
        return tuple(states.get(source.name) or self._unknown(source) for source in self._remote)

    def _unknown(self, source: Source) -> KillSwitchState:
        """A source with no reading yet: off, or tripped under on_error="closed"."""
        if self._on_error == "closed":
            return KillSwitchState(is_global=True, reason="kill switch source not read yet", source=source.name)
        return KillSwitchState(source=source.name)

    def _read_remote(self) -> None:
        """Read the file, Redis and URL sources (on the background thread, or in :meth:`refresh`)."""
        with self._lock:
            version = self._version
        readings = {source.name: self._read(source) for source in self._remote}
        with self._lock:
            for name, state in readings.items():
                if self._written.get(name, -1) < version:  # a trip/reset made meanwhile is newer
                    self._remote_states[name] = state

    def _read(self, source: Source) -> KillSwitchState:
        try:
            state = source.read()
        except Exception as e:  # noqa: BLE001 - unreachable, timed out, malformed: on_error decides
            return self._failed(source, e)
        if source.name in self._failing:
            self._failing.discard(source.name)
            logger.warning("kill switch source %s is readable again", source.name)
        self._last[source.name] = state
        return state

    def _failed(self, source: Source, error: Exception) -> KillSwitchState:
        problem = f"{type(error).__name__}: {redact_text(str(error))}"
        if source.name not in self._failing:
            self._failing.add(source.name)
            action = (
                "keeping its last known state (on_error='open')"
                if self._on_error == "open"
                else "treating the kill switch as tripped for every agent (on_error='closed')"
            )
            logger.warning("kill switch source %s cannot be read (%s); %s", source.name, problem, action)
        if self._on_error == "closed":
            return KillSwitchState(
                is_global=True, reason=f"kill switch source unreadable: {problem}", source=source.name
            )
        return self._last.get(source.name, KillSwitchState(source=source.name))

    # -- operating ----------------------------------------------------------------------------

    def trip(self, agent_id: str | None = None, reason: str | None = None, *, feature: str | None = None) -> None:
        """Stop every agent (no ``agent_id`` nor ``feature``), one agent, or every agent working on
        one ``feature``, writing to the Redis key and the file (whichever are configured; the
        environment variable is read-only). This instance sees the trip at once; others within
        their ``ttl``."""
        if agent_id is not None and feature is not None:
            raise ConfigurationError("KillSwitch.trip() takes agent_id or feature, not both")

        def change(current: KillSwitchState) -> KillSwitchState:
            reason_now = reason or current.reason
            if feature is not None:
                return replace(current, features=current.features | {feature}, reason=reason_now)
            if agent_id is None:
                return replace(current, is_global=True, reason=reason_now)
            return replace(current, agents=current.agents | {agent_id}, reason=reason_now)

        self._write(change, "trip")

    def reset(self, agent_id: str | None = None, *, feature: str | None = None) -> None:
        """Clear the switch (no ``agent_id`` nor ``feature``: everything, global, per agent and per
        feature) or one agent's or one feature's trip in the Redis key and the file. Resetting one
        agent or feature does not lift a global trip."""
        if agent_id is not None and feature is not None:
            raise ConfigurationError("KillSwitch.reset() takes agent_id or feature, not both")

        def change(current: KillSwitchState) -> KillSwitchState:
            if agent_id is None and feature is None:
                return KillSwitchState(source=current.source)
            if feature is not None:
                new = replace(current, features=current.features - {feature})
            else:
                new = replace(current, agents=current.agents - {agent_id})
            return new if new.tripped else KillSwitchState(source=current.source)

        self._write(change, "reset")

    def _write(self, change: Callable[[KillSwitchState], KillSwitchState], what: str) -> None:
        if not self._writable:
            raise ConfigurationError(
                f"KillSwitch.{what}() needs a file or a Redis source; the environment variable and the URL are read-only"
            )
        for target in self._writable:
            new = target.update(change)
            with self._lock:
                self._version += 1
                self._written[target.name] = self._version
                if any(source is target for source in self._remote):
                    self._remote_states[target.name] = new
        self._inline_cache = None  # with ttl=0 the file is read inline: read it again

    def __repr__(self) -> str:
        return f"KillSwitch(sources={list(self.sources)!r}, ttl={self._ttl}, on_error={self._on_error!r})"


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _combine(states: tuple[KillSwitchState, ...]) -> KillSwitchState:
    tripped = [s for s in states if s.tripped]
    if not tripped:
        return KillSwitchState()
    return KillSwitchState(
        is_global=any(s.is_global for s in tripped),
        agents=frozenset().union(*(s.agents for s in tripped)),
        features=frozenset().union(*(s.features for s in tripped)),
        reason=next((s.reason for s in tripped if s.reason), None),
        source=", ".join(s.source or "?" for s in tripped),
    )


def _check_seconds(name: str, value: Any, *, allow_zero: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigurationError(f"KillSwitch {name} must be a finite number of seconds {bound}, got {value!r}")
