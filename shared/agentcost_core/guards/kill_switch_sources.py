"""The kill switch's sources and what they say: an environment variable, a file, a Redis key, an
HTTP(S) URL answering JSON; the two formats they speak (text and JSON) and the state they read."""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from ..errors import AgentCostError, ConfigurationError
from ..privacy import redact_text, redact_url

__all__ = [
    "EnvSource", "FileSource", "KillSwitchState", "KillSwitchUnreadable", "Malformed", "RedisSource", "Source",
    "UrlSource", "Writable", "connect_redis",
]  # fmt: skip

logger = logging.getLogger("agentcost_core.guards.kill_switch")

_GLOBAL_WORDS = frozenset({"1", "true", "all", "*"})
_OFF_WORDS = frozenset({"", "0", "false"})
_MAX_BODY = 1_000_000  # bytes read from the URL; a kill-switch document is tiny


@dataclass(frozen=True)
class KillSwitchState:
    """What the kill switch says: every agent stopped (``is_global``), or the listed ``agents`` and
    the agents working on the listed ``features``.

    ``reason`` is the operator's note, if any; ``source`` names where the trip was read
    (``"env:AGENTCOST_KILL_SWITCH"``, ``"file:/path"``, ``"redis:key"``, ``"url:http://host/path"``;
    several are joined by ``", "`` in :meth:`KillSwitch.state`).
    """

    is_global: bool = False
    agents: frozenset[str] = field(default_factory=frozenset)
    reason: str | None = None
    source: str | None = None
    features: frozenset[str] = field(default_factory=frozenset)

    @property
    def tripped(self) -> bool:
        """True when any agent at all is stopped."""
        return self.is_global or bool(self.agents) or bool(self.features)

    def applies_to(self, agent_id: str | None, feature: str | None = None) -> bool:
        """True when an agent with this id (``None``: an unnamed agent), working on ``feature``
        (``None``: none named), must stop."""
        return (
            self.is_global
            or (agent_id is not None and agent_id in self.agents)
            or (feature is not None and feature in self.features)
        )


class KillSwitchUnreadable(AgentCostError):
    """A kill switch source that cannot be read now (unreachable, timed out, malformed), raised by
    :meth:`KillSwitch.read_now`: the switch's state is unknown. ``source`` names it, ``problem`` says why."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source} cannot be read: {problem}")
        self.source = source
        self.problem = problem


class Malformed(ValueError):
    """A source's content is in neither format."""


def _parse(text: str, source: str, *, json_only: bool = False) -> KillSwitchState:
    """One source's content in either format; ``ValueError`` when it is malformed."""
    stripped = text.strip()
    if json_only or stripped.startswith(("{", "[")):
        return _parse_json(stripped, source)
    word = stripped.lower()
    if word in _OFF_WORDS:
        return KillSwitchState(source=source)
    if word in _GLOBAL_WORDS:
        return KillSwitchState(is_global=True, source=source)
    agents = frozenset(a.strip() for a in stripped.split(",") if a.strip())
    return KillSwitchState(agents=agents, source=source)


def _parse_json(text: str, source: str) -> KillSwitchState:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise Malformed(f"not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise Malformed(f"expected a JSON object, got {type(data).__name__}")
    is_global = data.get("global", False)
    agents = data.get("agents", [])
    features = data.get("features") or []
    reason = data.get("reason")
    if not isinstance(is_global, bool):
        raise Malformed(f'"global" must be true or false, got {is_global!r}')
    if agents is None:
        agents = []
    if not isinstance(agents, list) or not all(isinstance(a, str) and a for a in agents):
        raise Malformed(f'"agents" must be a list of agent id strings, got {agents!r}')
    if not isinstance(features, list) or not all(isinstance(f, str) and f for f in features):
        raise Malformed(f'"features" must be a list of feature name strings, got {features!r}')
    if reason is not None and not isinstance(reason, str):
        raise Malformed(f'"reason" must be a string, got {reason!r}')
    return KillSwitchState(is_global=is_global, agents=frozenset(agents), reason=reason or None, source=source,
                           features=frozenset(features))  # fmt: skip


def _dump(state: KillSwitchState) -> str:
    data: dict[str, Any] = {"global": state.is_global, "agents": sorted(state.agents), "reason": state.reason}
    if state.features:
        data["features"] = sorted(state.features)
    return json.dumps(data)


class Source(Protocol):
    name: str

    def read(self) -> KillSwitchState: ...


class Writable(Protocol):
    name: str

    def update(self, change: Callable[[KillSwitchState], KillSwitchState]) -> KillSwitchState: ...


class EnvSource:
    def __init__(self, var: str) -> None:
        self.var = var
        self.name = f"env:{var}"

    def read(self) -> KillSwitchState:
        return _parse(os.environ.get(self.var, ""), self.name)


class FileSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"file:{path}"
        self._lock = threading.Lock()

    def read(self) -> KillSwitchState:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return KillSwitchState(source=self.name)
        return _parse(text, self.name)

    def update(self, change: Callable[[KillSwitchState], KillSwitchState]) -> KillSwitchState:
        with self._lock:
            try:
                current = self.read()
            except ValueError as e:
                logger.warning("kill switch %s held malformed content (%s); overwriting it", self.name, e)
                current = KillSwitchState(source=self.name)
            new = change(current)
            self.path.parent.mkdir(parents=True, exist_ok=True)  # a first trip may create the folder
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(_dump(new), encoding="utf-8")
            os.replace(tmp, self.path)  # readers see the old or the new content, never half of it
            return replace(new, source=self.name)


class RedisSource:
    def __init__(self, client: Any, key: str) -> None:
        self.client = client
        self.key = key
        self.name = f"redis:{key}"

    def read(self) -> KillSwitchState:
        return self._decode(self.client.get(self.key))

    def _decode(self, raw: Any) -> KillSwitchState:
        if raw is None:
            return KillSwitchState(source=self.name)
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else str(raw)
        return _parse(text, self.name)

    def update(self, change: Callable[[KillSwitchState], KillSwitchState]) -> KillSwitchState:
        written: list[KillSwitchState] = []

        def apply(pipe: Any) -> None:  # read-modify-write under WATCH: concurrent operators do not lose updates
            try:
                current = self._decode(pipe.get(self.key))
            except ValueError as e:
                logger.warning("kill switch %s held malformed content (%s); overwriting it", self.name, e)
                current = KillSwitchState(source=self.name)
            new = change(current)
            written[:] = [new]
            pipe.multi()
            if new.tripped:
                pipe.set(self.key, _dump(new))
            else:
                pipe.delete(self.key)

        if hasattr(self.client, "transaction"):
            self.client.transaction(apply, self.key)
            return replace(written[-1], source=self.name)
        new = change(self.read())  # a minimal duck-typed client: get / set / delete only
        if new.tripped:
            self.client.set(self.key, _dump(new))
        else:
            self.client.delete(self.key)
        return replace(new, source=self.name)


class UrlSource:
    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        self.name = f"url:{parts.scheme}://{host}{parts.path}"  # no credentials or query in logs

    def read(self) -> KillSwitchState:
        request = urllib.request.Request(
            self.url, headers={"Accept": "application/json", "User-Agent": "agentcost-kill-switch"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            body = response.read(_MAX_BODY)
        return _parse(body.decode("utf-8"), self.name, json_only=True)


def connect_redis(redis_url: str | None, timeout: float) -> Any:
    """A client for ``redis_url`` that fails fast (no retries) so an outage costs one timeout."""
    if not isinstance(redis_url, str) or not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(
            f"KillSwitch redis_url must be a redis://, rediss:// or unix:// URL, got {redact_url(redis_url)!r}"
        )
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError:
        raise ConfigurationError(
            "KillSwitch redis_url needs the redis package: pip install 'agentcost-control[redis]'"
        ) from None
    try:
        return redis.Redis.from_url(
            redis_url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
    except ValueError as e:
        raise ConfigurationError(f"KillSwitch redis_url is not usable: {redact_text(str(e))}") from None
