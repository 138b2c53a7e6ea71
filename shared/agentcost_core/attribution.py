"""Who a call belongs to, read once from the frameworks' own metadata.

Both adapters read attribution here: LangChain run ``metadata`` (and LangGraph's ``configurable``
``thread_id``), LlamaIndex ``instrument_tags``. Keys: ``user_id``, ``session_id`` (or
``thread_id`` / ``conversation_id``), ``feature``, ``agent_id``, ``task_id``; values become text.
What the metadata does not say comes from the defaults (a handler's constructor keywords).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["ATTRIBUTION_FIELDS", "Attribution", "read_attribution"]

#: The fields users attribute spend by, in the order reports list them.
ATTRIBUTION_FIELDS = ("user_id", "session_id", "feature", "agent_id", "task_id")
#: Metadata keys that name the session, first match wins.
SESSION_KEYS = ("session_id", "thread_id", "conversation_id")


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


@dataclass(frozen=True, slots=True)
class Attribution:
    """The attribution of one call (every field text or None)."""

    user_id: str | None = None
    session_id: str | None = None
    feature: str | None = None
    agent_id: str | None = None
    task_id: str | None = None

    @classmethod
    def of(cls, values: Mapping[str, Any] | None) -> Attribution:
        """From keyword values (a constructor's ``**attribution``); unknown names are an error."""
        values = dict(values or {})
        unknown = set(values) - set(ATTRIBUTION_FIELDS)
        if unknown:
            raise TypeError(f"unknown attribution field(s) {sorted(unknown)}; use {list(ATTRIBUTION_FIELDS)}")
        return cls(**{k: _text(v) for k, v in values.items()})

    def over(self, defaults: Attribution) -> Attribution:
        """This attribution, each missing field taken from ``defaults`` (runs once or twice per
        model call: the fields are spelled out rather than looked up with ``dataclasses.fields``)."""
        if defaults is NO_ATTRIBUTION or defaults is self:
            return self
        return Attribution(
            user_id=self.user_id or defaults.user_id,
            session_id=self.session_id or defaults.session_id,
            feature=self.feature or defaults.feature,
            agent_id=self.agent_id or defaults.agent_id,
            task_id=self.task_id or defaults.task_id,
        )

    def as_dict(self) -> dict[str, str | None]:
        return {
            "user_id": self.user_id,
            "session_id": self.session_id,
            "feature": self.feature,
            "agent_id": self.agent_id,
            "task_id": self.task_id,
        }


NO_ATTRIBUTION = Attribution()


def read_attribution(
    metadata: Mapping[str, Any] | None,
    *,
    defaults: Attribution = NO_ATTRIBUTION,
    configurable: Mapping[str, Any] | None = None,
) -> Attribution:
    """The attribution a run's metadata gives (LangGraph's ``configurable["thread_id"]`` names the
    session when the metadata does not), over ``defaults``."""
    md = metadata or {}
    if md.keys().isdisjoint(_KEYS) and not configurable:  # the metadata names no one (most runs)
        return defaults
    session = None
    for key in SESSION_KEYS:  # the first one set names the session
        if md.get(key) not in (None, ""):
            session = md[key]
            break
    if session is None and configurable:
        session = configurable.get("thread_id")
    values = (
        _text(md.get("user_id")),
        _text(session),
        _text(md.get("feature")),
        _text(md.get("agent_id")),
        _text(md.get("task_id")),
    )
    if values == _NOTHING:  # the metadata names no one: the defaults, as they are
        return defaults
    user_id, session_id, feature, agent_id, task_id = values
    found = Attribution(user_id=user_id, session_id=session_id, feature=feature, agent_id=agent_id, task_id=task_id)
    return found.over(defaults)


_NOTHING = (None, None, None, None, None)
#: Every metadata key :func:`read_attribution` reads.
_KEYS = frozenset(ATTRIBUTION_FIELDS + SESSION_KEYS)
