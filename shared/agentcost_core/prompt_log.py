"""Prompt logging, opt-in: the full prompt (system, history, tool schemas) and the response of each
model call, redacted, kept beside its ledger event and / or exported as an OTel span event.

Off by default (``log_prompts=False``): nothing here runs and no prompt text is kept anywhere.
On (``log_prompts=True``, or ``log_prompts=PromptLogging(...)`` for redaction hooks), the recorder
builds one :class:`PromptRecord` per model call, after the call, from the call path's
:class:`~agentcost_core.call.ModelCall` (messages, tools) and :class:`~agentcost_core.call.Outcome`
(text, tool calls):

* the ledger stores it in its own table keyed by the event id (``Ledger.prompts(event_id)`` and
  ``agentcost ledger prompts EVENT_ID`` read it back), through the ledger's background writer,
  and deletes rows older than the ledger's ``prompt_retention_days`` (default 30);
* an :class:`~agentcost_core.otel.OTelExporter` built with ``prompt_events=True`` adds it to the
  call's ``chat`` span as a ``gen_ai.client.inference.operation.details`` event.

Messages are kept in the GenAI semantic conventions' JSON shape (``gen_ai.input.messages`` /
``gen_ai.output.messages``: ``[{"role": ..., "parts": [{"type": "text", "content": ...}]}]``), so
the ledger and the exporters hold the same text. Every text is passed through
:func:`~agentcost_core.privacy.redact_prompt_text` before it is kept: the user's ``patterns`` and
``redact`` callable, then always the built-in redactors (API keys, bearer tokens, authorization
headers, passwords, emails, card numbers).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError
from .privacy import redact_prompt_text

__all__ = ["PromptLogging", "PromptRecord"]

#: Redacted texts remembered per :class:`PromptLogging` (a conversation resends its history on
#: every call: each message is redacted once). Past this many the memory starts over.
_REMEMBERED = 2048


@dataclass(frozen=True, slots=True)
class PromptRecord:
    """One model call's prompt and response as kept: JSON texts in the GenAI conventions' shape
    (``input_messages``, ``output_messages``; ``tool_definitions`` the tool schemas sent, or None)."""

    event_id: str
    ts: float
    input_messages: str
    output_messages: str
    tool_definitions: str | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The prompt's messages, parsed."""
        return json.loads(self.input_messages)

    @property
    def response(self) -> list[dict[str, Any]]:
        """The response's messages (usually one, from the assistant), parsed."""
        return json.loads(self.output_messages)

    @property
    def text(self) -> str:
        """Every text part of the prompt and the response, one per line (for reading and search)."""
        parts = [p for m in (*self.messages, *self.response) for p in m.get("parts", ())]
        return "\n".join(str(p.get("content", p.get("arguments", ""))) for p in parts)


def _compile(patterns: Iterable[str | re.Pattern[str]]) -> tuple[re.Pattern[str], ...]:
    if isinstance(patterns, (str, re.Pattern)):
        patterns = (patterns,)
    out = []
    for p in patterns:
        if isinstance(p, re.Pattern):
            out.append(p)
        elif isinstance(p, str) and p:
            try:
                out.append(re.compile(p))
            except re.error as e:
                raise ConfigurationError(f"bad redaction pattern {p!r}: {e}") from None
        else:
            raise ConfigurationError(f"patterns= takes regular expressions (strings or compiled), got {p!r}")
    return tuple(out)


class PromptLogging:
    """Prompt logging's settings (``log_prompts=PromptLogging(...)``; ``log_prompts=True`` is
    ``PromptLogging()``).

    ``patterns``: regular expressions whose matches become ``***`` (an order number, an internal
    id …); ``redact``: a callable ``(text) -> text`` run on every message text, tool-call
    arguments and tool schemas. The built-in redactors run after both, always. ``ledger=False``
    keeps prompts out of the ledger (only exporters with ``prompt_events=True`` get them)."""

    __slots__ = ("_cleaned", "ledger", "patterns", "redact")

    def __init__(
        self,
        *,
        patterns: Iterable[str | re.Pattern[str]] = (),
        redact: Callable[[str], str] | None = None,
        ledger: bool = True,
    ) -> None:
        if redact is not None and not callable(redact):
            raise ConfigurationError(f"redact= takes a callable (text) -> text, got {type(redact).__name__}")
        if not isinstance(ledger, bool):
            raise ConfigurationError(f"ledger= must be True or False, got {ledger!r}")
        self.patterns = _compile(patterns)
        self.redact = redact
        self.ledger = ledger
        self._cleaned: dict[str, str] = {}

    @classmethod
    def of(cls, log_prompts: Any) -> PromptLogging | None:
        """``log_prompts=`` as given: None when off (False), the settings when on."""
        if log_prompts is False:
            return None
        if log_prompts is True:
            return cls()
        if isinstance(log_prompts, PromptLogging):
            return log_prompts
        raise TypeError(f"log_prompts must be True, False or a PromptLogging, got {log_prompts!r}")

    def __repr__(self) -> str:
        return f"PromptLogging(patterns={len(self.patterns)}, redact={self.redact is not None}, ledger={self.ledger})"

    def clean(self, text: Any) -> str:
        """``text`` as it may be kept: the user's redactors, then the built-in ones (remembered per
        text, so ``redact`` should give the same result for the same text)."""
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        if not text:
            return text
        cleaned = self._cleaned.get(text)
        if cleaned is None:
            cleaned = redact_prompt_text(text, patterns=self.patterns, redact=self.redact)
            if len(self._cleaned) >= _REMEMBERED:
                self._cleaned.clear()
            self._cleaned[text] = cleaned
        return cleaned

    def _arguments(self, args: Any) -> Any:
        """Tool-call arguments redacted as JSON text (so ``{"password": …}`` pairs are caught too)."""
        text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False, default=str)
        cleaned = self.clean(text)
        try:
            return json.loads(cleaned)
        except ValueError:
            return cleaned

    def record(self, event: Any, call: Any, outcome: Any) -> PromptRecord:
        """The :class:`PromptRecord` of one recorded model call."""
        messages = []
        for m in call.messages:
            message: dict[str, Any] = {"role": m.role, "parts": [{"type": "text", "content": self.clean(m.content)}]}
            if m.name:
                message["name"] = m.name
            messages.append(message)
        output: list[dict[str, Any]] = []
        parts: list[dict[str, Any]] = []
        if outcome.text:
            parts.append({"type": "text", "content": self.clean(outcome.text)})
        for name, args in outcome.tool_calls:
            parts.append({"type": "tool_call", "name": name, "arguments": self._arguments(args)})
        if parts:
            finish = "tool_call" if outcome.tool_calls else "stop"
            output.append({"role": "assistant", "parts": parts, "finish_reason": finish})
        return PromptRecord(
            event_id=str(event.id),
            ts=event.ts,
            input_messages=json.dumps(messages, ensure_ascii=False),
            output_messages=json.dumps(output, ensure_ascii=False),
            tool_definitions=self.clean(call.tools) if call.tools else None,
        )
