"""The structured summary that replaces old history: what a cheap model writes every few turns,
merged incrementally with the previous one and injected as one system message."""

from __future__ import annotations

import json
from typing import Any, Callable, Sequence

from pydantic import BaseModel, Field

__all__ = ["KeyFact", "StructuredSummary", "Summarizer", "summary_prompt"]


class KeyFact(BaseModel):
    """One fact worth keeping, with the turn it came from (1-based, counted over the conversation)."""

    fact: str
    turn: int | None = None


class StructuredSummary(BaseModel):
    """What the agent must remember of the history it no longer sees verbatim."""

    user_context: str = Field("", description="Who the user is and what they want, in one or two sentences")
    decisions: list[str] = Field(default_factory=list, description="Decisions made so far")
    task_state: str = Field("", description="Where the current task stands")
    open_items: list[str] = Field(default_factory=list, description="Questions or steps still open")
    key_facts: list[KeyFact] = Field(default_factory=list, description="Facts to keep, with their turn")
    turns_covered: int = Field(0, description="How many turns of history this summary covers")

    def merged(self, newer: StructuredSummary) -> StructuredSummary:
        """This summary updated by a newer one: newer scalars win when set, lists are unioned in
        order without duplicates, facts keep their original turn."""

        def union(a: Sequence[str], b: Sequence[str]) -> list[str]:
            out = list(a)
            for x in b:
                if x not in out:
                    out.append(x)
            return out

        facts = list(self.key_facts)
        known = {f.fact for f in facts}
        for f in newer.key_facts:
            if f.fact not in known:
                facts.append(f)
                known.add(f.fact)
        closed = set(newer.decisions)  # an open item the newer summary decided is no longer open
        return StructuredSummary(
            user_context=newer.user_context or self.user_context,
            decisions=union(self.decisions, newer.decisions),
            task_state=newer.task_state or self.task_state,
            open_items=[x for x in union(self.open_items, newer.open_items) if x not in closed],
            key_facts=facts,
            turns_covered=self.turns_covered + newer.turns_covered,
        )

    def render(self) -> str:
        """The text of the system message that carries the summary (stable between summaries)."""
        lines = ["Summary of the earlier conversation (older messages are not shown):"]
        if self.user_context:
            lines.append(f"User: {self.user_context}")
        if self.task_state:
            lines.append(f"Task state: {self.task_state}")
        if self.decisions:
            lines.append("Decisions: " + "; ".join(self.decisions))
        if self.open_items:
            lines.append("Open items: " + "; ".join(self.open_items))
        if self.key_facts:
            lines.append(
                "Key facts: " + "; ".join(f"{f.fact} (turn {f.turn})" if f.turn else f.fact for f in self.key_facts)
            )
        return "\n".join(lines)


#: ``summarizer(previous, transcript, first_turn) -> StructuredSummary`` where ``transcript`` is a
#: list of ``(role, text)`` of the turns to fold in and ``first_turn`` the number of its first turn.
Summarizer = Callable[[StructuredSummary | None, list[tuple[str, str]], int], StructuredSummary]


def summary_prompt(previous: StructuredSummary | None, transcript: list[tuple[str, str]], first_turn: int) -> str:
    """The instruction adapters send to a cheap model to summarize ``transcript``."""
    schema = json.dumps(StructuredSummary.model_json_schema()["properties"], indent=None)
    lines = [f"[{role}] {text}" for role, text in transcript]
    prior = previous.model_dump_json() if previous is not None else "none"
    return (
        "Summarize this part of a conversation for an assistant that will no longer see it. "
        "Keep user context, decisions made, the current task state, open items and key facts "
        f"(with the turn each came from; the first turn below is turn {first_turn}). "
        "Only write what is new relative to the previous summary. Answer with JSON matching these fields: "
        f"{schema}\n\nPrevious summary: {prior}\n\nConversation:\n" + "\n".join(lines)
    )


def parse_summary(text: str | dict[str, Any] | StructuredSummary) -> StructuredSummary:
    """A summary from a model's JSON answer (tolerates a fenced code block)."""
    if isinstance(text, StructuredSummary):
        return text
    if isinstance(text, dict):
        return StructuredSummary.model_validate(text)
    s = text.strip()
    if s.startswith("```"):
        s = s.strip("`")
        s = s[s.find("{") :] if "{" in s else s
    start, end = s.find("{"), s.rfind("}")
    return StructuredSummary.model_validate_json(s[start : end + 1] if start >= 0 else s)
