"""Keep every model call inside a token budget by priority.

Tiers (``TieredContext.fit``):

* **protected** — system messages, pinned messages, the current user input (the latest user
  message), and the running summary. Never cut; if they alone exceed the budget that is a
  :class:`ContextBudgetError` (or a warning, with ``on_overflow="warn"``).
* **high** — the latest step of the current turn (the last assistant message with its tool
  results) and messages marked ``priority="high"`` (retrieved documents) in the current turn;
  entitled to ``high_share`` (30%) of what remains after protected.
* **medium** — the last ``recent_turns`` (5) turns before the current input, and earlier steps of
  the current turn; entitled to ``medium_share`` (25%).
* **low** — older turns: the rest.

Over budget it compresses from the bottom: low turns are folded into the structured summary (with a
summarizer) or archived and dropped (without); then medium loses whole units, oldest first (a turn,
or a step of the current turn: an assistant message is never separated from its tool results),
down to its share; then the high tier's tool outputs are clipped with a marker. Output order is
stable → volatile: system, pinned, summary, history, current input, current steps.

Work per call is O(new messages + what is in view): counts are memoized on each item, the history
is read incrementally (``fit`` recognises the list it saw last time by identity and only reads what
was appended), and turns that leave the view for good (summarized or archived) are forgotten.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from ..errors import ConfigurationError
from ..halts import passes_through
from ..privacy import redact_text
from ..tokens import ChatMessage, TokenCounter
from .clipping import clip_tool_outputs
from .plan import ContextBudgetError, ContextPlan, ContextReport, Item
from .summary import StructuredSummary, Summarizer

__all__ = ["ContextBudgetError", "ContextPlan", "ContextReport", "Item", "TieredContext"]

logger = logging.getLogger("agentcost.context")
_PRIMING = 3  # reply priming counted once per request


@dataclass(eq=False)
class _Unit:
    """Messages that stay together: a user message, or an assistant step with its tool results."""

    items: list[Item] = field(default_factory=list)
    tokens: int = 0
    open_calls: set[str] = field(default_factory=set)

    def add(self, item: Item) -> None:
        self.items.append(item)
        self.tokens += item.tokens
        self.open_calls.update(item.tool_call_ids)
        if item.tool_call_id:
            self.open_calls.discard(item.tool_call_id)


@dataclass(eq=False)
class _Turn:
    user: _Unit | None
    steps: list[_Unit] = field(default_factory=list)
    number: int = 0

    @property
    def tokens(self) -> int:
        return (self.user.tokens if self.user else 0) + sum(s.tokens for s in self.steps)

    def items(self) -> list[Item]:
        out = list(self.user.items) if self.user else []
        for s in self.steps:
            out.extend(s.items)
        return out


@dataclass(frozen=True)
class _Request:
    """What one ``fit`` was asked."""

    items: Sequence[Item] | None
    source: Sequence[Any] | None
    convert: Callable[[Any], Item] | None
    budget: int | None


@dataclass(frozen=True)
class _Fold:
    """A summary to write before the selection: the low turns through turn ``last``."""

    previous: StructuredSummary | None
    transcript: list[tuple[str, str]]
    first: int
    last: int
    count: int
    generation: int
    request: _Request
    report: ContextReport


def _fraction(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
        raise ConfigurationError(f"TieredContext {name}= must be a fraction between 0 and 1, got {v!r}")
    return float(v)


class TieredContext:
    """``TieredContext(max_tokens, *, model=None, summarizer=None, recent_turns=5, high_share=0.30,
    medium_share=0.25, summarize_every=10, on_overflow="error", archive=None, counter=None)``."""

    def __init__(
        self,
        max_tokens: int,
        *,
        model: str | None = None,
        summarizer: Summarizer | None = None,
        recent_turns: int = 5,
        high_share: float = 0.30,
        medium_share: float = 0.25,
        summarize_every: int = 10,
        on_overflow: str = "error",
        archive: Callable[[list[Item]], Any] | None = None,
        counter: TokenCounter | None = None,
    ) -> None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= _PRIMING:
            raise ConfigurationError(f"TieredContext max_tokens must be a positive int, got {max_tokens!r}")
        if isinstance(recent_turns, bool) or not isinstance(recent_turns, int) or recent_turns < 0:
            raise ConfigurationError(f"recent_turns must be an int >= 0, got {recent_turns!r}")
        if isinstance(summarize_every, bool) or not isinstance(summarize_every, int) or summarize_every < 1:
            raise ConfigurationError(f"summarize_every must be an int >= 1, got {summarize_every!r}")
        self.high_share = _fraction("high_share", high_share)
        self.medium_share = _fraction("medium_share", medium_share)
        if self.high_share + self.medium_share > 1:
            raise ConfigurationError(f"high_share + medium_share must be <= 1, got {high_share} + {medium_share}")
        if on_overflow not in ("error", "warn"):
            raise ConfigurationError(f"on_overflow must be 'error' or 'warn', got {on_overflow!r}")
        if summarizer is not None and not callable(summarizer):
            raise ConfigurationError("summarizer must be callable (previous, transcript, first_turn) -> summary")
        if archive is not None and not callable(archive):
            raise ConfigurationError("archive must be a callable receiving the dropped items")
        self.max_tokens = max_tokens
        self.model = model
        self.counter = counter or TokenCounter.for_model(model)
        self.summarizer = summarizer
        self.recent_turns = recent_turns
        self.summarize_every = summarize_every
        self.on_overflow = on_overflow
        self.archive = archive
        self.summary: StructuredSummary | None = None
        self.last_report: ContextReport | None = None
        self.archived_turns = 0
        self._lock = threading.RLock()
        self._generation = 0  # bumped when a different conversation starts: a pending summary is void
        self._folding = False  # a summary is being written (outside the lock)
        self.reset()

    # --- state -----------------------------------------------------------------------------
    def reset(self, *, conversation: bool = True) -> None:
        """Forget the history read so far; with ``conversation`` also the summary and what was
        archived (a different conversation starts)."""
        with self._lock:  # a selection in progress on another thread finishes first
            if conversation:
                self._generation += 1
                self.summary = None
                self._forgotten_through = 0  # turns up to this number are in the summary or archived
                self._first_ref: Any = None  # the first non-system message: identifies the conversation
                self._first_idx = -1
                self._started = False  # a fresh context: a summary set on it by hand is kept
            self._source_len = 0
            self._last_ref: Any = None
            self._lead: list[tuple[Any, Item]] = []  # leading system messages: re-checked on every call
            self._protected: list[Item] = []  # system and pinned messages, in order
            self._turns: list[_Turn] = []  # the turns still in view (oldest first)
            self._turn_count = 0
            self._unsummarized = 0  # low turns gathered since the last summary
            self._full = 0  # tokens of the whole history, for the report

    def _count(self, item: Item) -> Item:
        if item.tokens < 0:
            item.tokens = self.counter.message_tokens(ChatMessage(item.role, item.text, item.name))
        return item

    def _ingest(self, item: Item, ref: Any = None, index: int = -1) -> None:
        if item.priority == "summary":  # a summary message of ours read back: the summary is kept apart
            return
        self._count(item)
        self._full += item.tokens
        if item.role == "system" or item.priority == "pinned":
            self._protected.append(item)
            if item.role == "system" and index == len(self._lead):
                self._lead.append((ref, item))
            return
        if self._first_idx < 0:
            self._first_idx, self._first_ref = index, ref
        if item.role == "user" and item.priority != "high":
            self._turn_count += 1
            self._turns.append(_Turn(_Unit(), number=self._turn_count))
            self._turns[-1].user.add(item)  # type: ignore[union-attr]
            return
        if not self._turns:
            self._turns.append(_Turn(None, number=0))
        turn = self._turns[-1]
        last = turn.steps[-1] if turn.steps else None
        # a tool result (or a message following unanswered calls) joins its step; else a new step
        if last is not None and (item.role == "tool" or (last.open_calls and item.role != "assistant")):
            last.add(item)
        else:
            step = _Unit()
            step.add(item)
            turn.steps.append(step)

    def read(self, items: Sequence[Item] | None = None, *, source: Sequence[Any] | None = None,
             convert: Callable[[Any], Item] | None = None) -> None:  # fmt: skip
        """Take in the history. With ``source`` + ``convert`` (a framework's message list and its
        translator) only messages appended since the last call are converted, when the list is
        the one seen before (recognised by the identity of its last known message)."""
        if source is None:
            source, convert = items or (), None
        n = len(source)
        known = self._source_len
        if known and n >= known and source[known - 1] is self._last_ref:
            self._refresh_lead(source, convert)  # a system prompt rebuilt per call (e.g. with the time)
        elif self._started:
            # Not the list seen last time: the same conversation (same first non-system message)
            # re-read from the start keeps its summary and skips the turns already folded in.
            idx = self._first_idx
            same = 0 <= idx < n and source[idx] is self._first_ref
            self.reset(conversation=not same)
            known = 0
        for k in range(known, n):
            m = source[k]
            self._ingest(convert(m) if convert is not None else m, m, k)
        if known == 0 and self._forgotten_through:
            self._turns = [t for t in self._turns if t.number > self._forgotten_through]
        self._source_len = n
        self._last_ref = source[n - 1] if n else None
        self._started = True

    def _refresh_lead(self, source: Sequence[Any], convert: Callable[[Any], Item] | None) -> None:
        for k, (ref, item) in enumerate(self._lead):
            m = source[k]
            if m is ref:
                continue
            new = self._count(convert(m) if convert is not None else m)
            self._full += new.tokens - item.tokens
            self._protected = [new if p is item else p for p in self._protected]
            self._lead[k] = (m, new)

    # --- the budget --------------------------------------------------------------------------
    def fit(self, items: Sequence[Item] | None = None, *, source: Sequence[Any] | None = None,
            convert: Callable[[Any], Item] | None = None, budget: int | None = None) -> ContextPlan:  # fmt: skip
        """The budgeted selection for the next call (see the module docstring). ``budget`` overrides
        ``max_tokens`` for this call (e.g. minus a system prompt sent separately).

        Thread-safe. The selection itself runs under the context's lock; a summary (a model call)
        runs outside it, so other callers are never stuck behind a summarizer. While one caller's
        summary is in flight, other callers select without summarizing (older turns wait, or leave
        that one view, within the budget); the summary lands with the next selection."""
        step = self._pass(_Request(items, source, convert, budget), ContextReport(self.max_tokens), fold=True)
        if isinstance(step, ContextPlan):
            return step
        with self._summarizing(step) as outcome:
            outcome.append(self.summarizer(step.previous, step.transcript, step.first))  # type: ignore[misc]
        return self._pass(step.request, step.report, fold=False)  # type: ignore[return-value]

    async def afit(self, items: Sequence[Item] | None = None, *, source: Sequence[Any] | None = None,
                   convert: Callable[[Any], Item] | None = None, budget: int | None = None) -> ContextPlan:  # fmt: skip
        """:meth:`fit` for a caller on an event loop: the summary is awaited, never run on the loop —
        the summarizer's ``asummarize`` coroutine when it has one (a chat model's ``ainvoke``), else
        the plain summarizer in a worker thread. Cancelled while summarizing: nothing is folded."""
        step = self._pass(_Request(items, source, convert, budget), ContextReport(self.max_tokens), fold=True)
        if isinstance(step, ContextPlan):
            return step
        with self._summarizing(step) as outcome:
            asummarize = getattr(self.summarizer, "asummarize", None)
            if asummarize is not None:
                outcome.append(await asummarize(step.previous, step.transcript, step.first))
            else:
                outcome.append(await asyncio.to_thread(self.summarizer, step.previous, step.transcript, step.first))  # type: ignore[arg-type]
        return self._pass(step.request, step.report, fold=False)  # type: ignore[return-value]

    @contextmanager
    def _summarizing(self, step: _Fold) -> Iterator[list[Any]]:
        """Around one summary: its result (appended by the caller) is folded in at the end; an
        error archives the turns instead (a failing summarizer never breaks the call); a
        cancellation folds nothing."""
        outcome: list[Any] = []
        try:
            yield outcome
        except Exception as e:
            if passes_through(e):  # a framework's control flow (an interrupt) is not a failed summary
                raise
            outcome[:] = [e]
        finally:
            self._settle(step, outcome[0] if outcome else None)

    def _pass(self, request: _Request, report: ContextReport, *, fold: bool) -> ContextPlan | _Fold:
        """One selection under the lock: the plan, or (``fold``) the summary to write first."""
        with self._lock:
            saved = self.max_tokens
            if request.budget is not None:
                self.max_tokens = request.budget
            try:
                return self._select(request, report, fold=fold)
            finally:
                self.max_tokens = saved

    def _settle(self, step: _Fold, result: StructuredSummary | Exception | None) -> None:
        """Fold a summary's result in (``None``: the summary was cancelled; an error: archive)."""
        with self._lock:
            self._folding = False
            if result is None or step.generation != self._generation:
                return  # cancelled, or the conversation was reset meanwhile: nothing to fold
            turns = [t for t in self._turns if t.number <= step.last]
            if isinstance(result, Exception) or not isinstance(result, StructuredSummary):
                problem = result if isinstance(result, Exception) else TypeError(
                    f"summarizer returned {type(result).__name__}, not StructuredSummary"
                )
                logger.error("agentcost context: summarizer failed (%s); archiving %d turns instead", redact_text(repr(problem)),
                             len(turns))  # fmt: skip
                for t in turns:
                    self._archive(t, step.report)
                return
            newer = result if result.turns_covered else result.model_copy(update={"turns_covered": step.count})
            step.report.summary_calls += 1
            self.summary = newer if self.summary is None else self.summary.merged(newer)
            step.report.summarized_turns += step.count
            self._forget_through(step.last)

    def _select(self, request: _Request, report: ContextReport, *, fold: bool) -> ContextPlan | _Fold:
        self.read(request.items, source=request.source, convert=request.convert)
        report.budget = self.max_tokens
        report.full_history = self._full + _PRIMING
        turns = self._turns
        current = turns[-1] if turns and turns[-1].user is not None else None
        past = turns[:-1] if current is not None else list(turns)
        medium_turns = past[len(past) - self.recent_turns :] if self.recent_turns else []
        low_turns = past[: len(past) - len(medium_turns)]
        current_steps = current.steps if current is not None else []
        high_steps = current_steps[-1:] if current_steps else []
        high_steps = [s for s in current_steps[:-1] if any(i.priority == "high" for i in s.items)] + high_steps
        medium_steps = [s for s in current_steps if s not in high_steps]

        protected = [*self._protected]
        user_tokens = current.user.tokens if current is not None else 0  # type: ignore[union-attr]
        summary_item = self._summary_item()
        room = self._room(protected, user_tokens, summary_item, report)
        h = sum(s.tokens for s in high_steps)
        m_units: list[Any] = [*medium_turns, *medium_steps]  # dropped oldest first
        m = sum(u.tokens for u in m_units)
        low = sum(t.tokens for t in low_turns)

        # 1. low goes first: summarized every N low turns (the summary is stable between summaries)
        # and whenever it does not fit; without a summarizer archived and dropped
        if self.summarizer is not None and low_turns and (len(low_turns) >= self.summarize_every or h + m + low > room):
            if fold and not self._folding:
                self._folding = True
                return _Fold(
                    previous=self.summary,
                    transcript=[(i.role, i.text) for t in low_turns for i in t.items()],
                    first=low_turns[0].number or 1,
                    last=low_turns[-1].number,
                    count=len(low_turns),
                    generation=self._generation,
                    request=request,
                    report=report,
                )
        elif h + m + low > room and low_turns:
            while low_turns and h + m + low > room:
                dropped = low_turns.pop(0)
                low -= dropped.tokens
                self._archive(dropped, report)
        medium_cap = int(self.medium_share * room)
        while m_units and h + m + low > room and m > medium_cap:  # 2. medium loses whole units, oldest first
            m -= m_units.pop(0).tokens
            report.dropped_units += 1
        high_items = [i for s in high_steps for i in s.items]
        if h + m + low > room:  # 3. clip the high tier's tool outputs
            high_items, h = clip_tool_outputs(high_items, max(0, room - m - low), self.counter, report)
        while m_units and h + m + low > room:  # 4. what clipping could not free comes out of medium
            m -= m_units.pop(0).tokens
            report.dropped_units += 1
        while low_turns and h + m + low > room:  # (low kept verbatim under summarize_every, or a summary pending)
            low -= low_turns.pop(0).tokens
        if h + m + low > room:  # the latest step's own messages do not fit even with outputs clipped
            message = f"the latest step needs {h} tokens but only {room} are left after protected messages"
            if self.on_overflow == "error":
                raise ContextBudgetError(message + ": raise max_tokens")
            logger.warning("agentcost context: %s; sending it over budget", message)
            report.over_budget = True

        out = list(protected)
        if summary_item is not None:
            out.append(summary_item)
        n_stable = len(out)
        for t in low_turns:
            out.extend(t.items())
        for u in m_units:
            if isinstance(u, _Turn):
                out.extend(u.items())
        if current is not None:
            out.extend(current.user.items)  # type: ignore[union-attr]
        # the current turn's kept steps in their own order (a high document stays before later steps)
        kept_medium = {id(u) for u in m_units if isinstance(u, _Unit)}
        by_origin = {id(orig): new for orig, new in zip((i for s in high_steps for i in s.items), high_items)}
        for step in current_steps:
            if id(step) in kept_medium:
                out.extend(step.items)
            elif step in high_steps:
                out.extend(by_origin.get(id(i), i) for i in step.items)

        report.summary = summary_item.tokens if summary_item else 0
        report.protected = self.max_tokens - room - report.summary if not report.over_budget else report.protected
        report.high, report.medium, report.low = h, m, low
        report.total = report.protected + report.summary + h + m + low
        self.last_report = report
        return ContextPlan(out, n_stable, report, self.summary)

    def _summary_item(self) -> Item | None:
        return None if self.summary is None else self._count(Item("system", self.summary.render()))

    def _room(self, protected: list[Item], user_tokens: int, summary_item: Item | None, report: ContextReport) -> int:
        """Tokens left for high + medium + low once protected (and the summary) are in."""
        p_tokens = _PRIMING + sum(i.tokens for i in protected) + user_tokens
        p_tokens += summary_item.tokens if summary_item is not None else 0
        room = self.max_tokens - p_tokens
        if room < 0:
            message = (
                f"protected messages (system, pinned, current input, summary) take {p_tokens} tokens, "
                f"over the {self.max_tokens}-token budget"
            )
            if self.on_overflow == "error":
                raise ContextBudgetError(message + ": shorten them or raise max_tokens")
            logger.warning("agentcost context: %s; sending them alone", message)
            report.over_budget = True
            report.protected = p_tokens - (summary_item.tokens if summary_item is not None else 0)
            return 0
        return room

    # --- compression steps -------------------------------------------------------------------
    def _archive(self, turn: _Turn, report: ContextReport) -> None:
        report.dropped_turns += 1
        self.archived_turns += 1
        if self.archive is not None:
            try:
                self.archive(turn.items())
            except Exception as e:
                if passes_through(e):
                    raise
                logger.error("agentcost context: archive callable failed: %r", e)
        self._forget([turn])

    def _forget(self, turns: list[_Turn]) -> None:
        self._forgotten_through = max([self._forgotten_through, *(t.number for t in turns)])
        gone = {id(t) for t in turns}
        self._turns = [t for t in self._turns if id(t) not in gone]

    def _forget_through(self, number: int) -> None:
        """Forget the oldest turns up to turn ``number`` (folded into the summary)."""
        self._forgotten_through = max(self._forgotten_through, number)
        self._turns = [t for t in self._turns if t.number > number]
