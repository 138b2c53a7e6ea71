"""The state of stuck detection for one agent run: :class:`StuckMonitor` records the run's model
outputs, tool calls and tool results and applies the rules of its
:class:`~agentcost_core.guards.stuck.StuckDetector` (see that module for the rules)."""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..halts import AgentHalted, TerminationReason
from ..privacy import redact_text
from .similarity import canonical, cosine, jaccard, result_text, shingles, short

if TYPE_CHECKING:
    from .stuck import StuckDetector

__all__ = ["StuckAction", "StuckMonitor", "StuckVerdict"]

logger = logging.getLogger("agentcost.guards.stuck")

StuckAction = Literal["ok", "nudge", "halt"]

_SIM_MAX_CHARS = 8000  # longer outputs are compared on their head and tail
_SIM_HALF = _SIM_MAX_CHARS // 2

# tool-call result states
_PENDING, _NEW, _STALE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class StuckVerdict:
    """What :meth:`StuckMonitor.check` decided.

    ``action`` is ``"ok"``, ``"nudge"`` or ``"halt"``; ``reason`` the
    :class:`~agentcost_core.halts.TerminationReason` of the detection (``None`` when ok; for a nudge
    the reason a halt would carry); ``message`` the text to inject into the model's next input (nudge)
    or the explanation of the halt; ``details`` what was seen (``rule``, ``tool``, ``args``, ``count``,
    ``score`` ..., plus ``iterations``, ``tool_calls`` and ``nudged``).
    """

    action: StuckAction
    reason: TerminationReason | None = None
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class _Call:
    """One tool call in the window."""

    __slots__ = ("key", "name", "rseq", "seq", "state")

    def __init__(self, name: str, key: str, seq: int) -> None:
        self.name = name
        self.key = key
        self.seq = seq  # when the call was recorded
        self.rseq = 0  # when its result was recorded
        self.state = _PENDING


class _Detection:
    __slots__ = ("details", "reason", "rule", "what", "why")

    def __init__(self, reason: TerminationReason, rule: str, what: str, why: str, details: dict[str, Any]) -> None:
        self.reason = reason
        self.rule = rule
        self.what = what  # second person, for the nudge
        self.why = why  # third person, for the halt
        self.details = details


class StuckMonitor:
    """Per-run stuck-detection state; one per agent run (use ``StuckDetector.start()``).

    Safe to feed from several threads of one run (parallel tool execution): every method takes
    the monitor's lock.
    """

    __slots__ = (
        "_announced",
        "_arm_seq",
        "_calls",
        "_d",
        "_embed_warned",
        "_halt",
        "_iterations",
        "_last_result",
        "_last_text",
        "_lock",
        "_nudged",
        "_prev_norm",
        "_prev_shingles",
        "_prev_vec",
        "_progress_since_output",
        "_seen",
        "_seq",
        "_share_needed",
        "_sim",
        "_stale_run",
        "_stale_seq",
        "_tool_calls",
    )  # fmt: skip

    def __init__(self, detector: StuckDetector) -> None:
        self._d = detector
        self._lock = threading.Lock()
        self._seq = 0
        self._iterations = 0
        self._tool_calls = 0
        self._calls: deque[_Call] = deque(maxlen=detector.window)
        self._announced: list[_Call] = []  # calls the latest model output requested, not yet executed
        self._seen: set[int] = set()  # hashes of the normalised results seen in this run
        self._share_needed = max(2, math.ceil(round(detector.same_tool_share * detector.window, 9)))
        self._stale_run = 0  # tool results in a row already seen
        self._stale_seq = 0
        self._last_text: str | None = None
        self._last_result: str | None = None
        self._prev_norm: str | None = None  # previous non-empty output, normalised
        self._prev_shingles: frozenset[str] | None = None
        self._prev_vec: tuple[float, ...] | None = None
        self._progress_since_output = False
        self._sim: tuple[float, int, str] | None = None  # (score, seq, measure) of a similar pair
        self._nudged = False
        self._arm_seq: int | None = None  # first event after the nudge that may halt
        self._halt: StuckVerdict | None = None
        self._embed_warned = False

    # -- properties ------------------------------------------------------------------------------

    @property
    def iterations(self) -> int:
        """Model steps recorded."""
        return self._iterations

    @property
    def tool_calls(self) -> int:
        """Tool calls recorded (an announced call that is later executed counts once)."""
        return self._tool_calls

    @property
    def nudged(self) -> bool:
        """Whether the nudge was already given."""
        return self._nudged

    # -- recording -------------------------------------------------------------------------------

    def record_model_output(self, text: str | None, tool_calls: Sequence[tuple[str, Any]] = ()) -> None:
        """One model step: its text (may be empty) and the tool calls it requested, as
        ``(name, args)`` pairs. Counts one iteration."""
        if text is not None and not isinstance(text, str):
            text = str(text)
        calls = [(str(name), canonical(args)) for name, args in tool_calls]
        norm: str | None = None
        vec: tuple[float, ...] | None = None
        if text and not text.isspace():  # the costly parts run outside the lock (embed may be remote)
            norm = " ".join(text.lower().split())
            if len(norm) > _SIM_MAX_CHARS:
                norm = norm[:_SIM_HALF] + norm[-_SIM_HALF:]
            if self._d.embed is not None:
                vec = self._embed(text)
        with self._lock:
            self._seq += 1
            seq = self._seq
            self._iterations += 1
            if self._nudged and self._arm_seq is None:
                self._arm_seq = seq
            self._announced.clear()
            if norm is not None:
                self._last_text = text
                self._compare(norm, vec, seq)
            for name, key in calls:
                self._announced.append(self._add_call(name, key, seq))

    def record_tool_call(self, name: str, args: Any) -> tuple[Any, bool]:
        """A tool call about to run (or running). If the latest model output announced it, it is
        matched to that announcement and not counted twice. Returns a token for
        :meth:`retract_tool_call`."""
        name = str(name)
        with self._lock:
            self._seq += 1
            same_name = [c for c in self._announced if c.name == name]
            if same_name:  # executing a call the model announced: prefer the one with these arguments
                match = same_name[0]
                if len(same_name) > 1:
                    key = canonical(args)
                    match = next((c for c in same_name if c.key == key), match)
                self._announced.remove(match)
                return match, True
            if self._nudged and self._arm_seq is None and self._iterations == 0:
                self._arm_seq = self._seq  # an adapter that records no model outputs
            return self._add_call(name, canonical(args), self._seq), False

    def retract_tool_call(self, token: tuple[Any, bool]) -> None:
        """Undo :meth:`record_tool_call` for a call that did not run (a LangGraph interrupt paused
        it; it runs again on resume): an announced call waits for its execution again, another
        leaves the window."""
        call, announced = token
        with self._lock:
            if announced:
                self._announced.append(call)
            elif call in self._calls:
                self._calls.remove(call)
                self._tool_calls -= 1

    def record_tool_result(self, name: str, result: Any) -> None:
        """A tool's result; new when its normalised text was not seen before in this run."""
        name = str(name)
        text = result_text(result)
        digest = hash(canonical(result, parse=False))
        with self._lock:
            self._seq += 1
            seq = self._seq
            if text and not text.isspace():
                self._last_result = text
            new = digest not in self._seen
            if new:
                self._seen.add(digest)
                self._stale_run = 0
                self._progress_since_output = True
            else:
                self._stale_run += 1
                self._stale_seq = seq
            for c in self._calls:  # the oldest call of this tool still waiting for its result
                if c.state == _PENDING and c.name == name:
                    c.state = _NEW if new else _STALE
                    c.rseq = seq
                    break

    def _add_call(self, name: str, key: str, seq: int) -> _Call:
        call = _Call(name, key, seq)
        self._calls.append(call)
        self._tool_calls += 1
        return call

    # -- similarity ------------------------------------------------------------------------------

    def _compare(self, norm: str, vec: tuple[float, ...] | None, seq: int) -> None:
        grams: frozenset[str] | None = None
        self._sim = None
        if self._prev_norm is not None:
            score: float | None = None
            measure = "embedding"
            if vec is not None and self._prev_vec is not None and len(vec) == len(self._prev_vec):
                score = cosine(vec, self._prev_vec)
            if score is None:
                measure = "shingle_jaccard"
                if norm == self._prev_norm:
                    score = 1.0
                else:
                    if self._prev_shingles is None:
                        self._prev_shingles = shingles(self._prev_norm)
                    grams = shingles(norm)
                    score = jaccard(grams, self._prev_shingles, self._d.similarity)
            if score >= self._d.similarity and not self._progress_since_output:
                self._sim = (score, seq, measure)
        self._prev_norm = norm
        self._prev_shingles = grams
        self._prev_vec = vec
        self._progress_since_output = False

    def _embed(self, text: str) -> tuple[float, ...] | None:
        try:
            return tuple(float(x) for x in self._d.embed(text))  # type: ignore[misc]
        except Exception as e:  # noqa: BLE001 - the user's embedding function failed: use the cheap measure
            if not self._embed_warned:
                self._embed_warned = True
                logger.warning(
                    "stuck detection: embed() failed (%s); using the text measure instead", redact_text(repr(e))
                )
            return None

    # -- verdicts --------------------------------------------------------------------------------

    def check(self) -> StuckVerdict:
        """Decide: ``"ok"``, ``"nudge"`` (once) or ``"halt"`` (final)."""
        with self._lock:
            if self._halt is not None:
                return self._halt
            d = self._d
            if d.max_iterations is not None and self._iterations > d.max_iterations:
                return self._halt_with(
                    TerminationReason.MAX_ITERATIONS,
                    f"Agent halted ({TerminationReason.MAX_ITERATIONS}): {self._iterations} model steps "
                    f"exceeded the cap of {d.max_iterations}.",
                    {"rule": "max_iterations", "max_iterations": d.max_iterations},
                )
            if self._nudged:
                if self._arm_seq is None:
                    return StuckVerdict("ok")
                min_seq = self._arm_seq
            else:
                min_seq = 0
            det = self._detect(min_seq)
            if det is None:
                return StuckVerdict("ok")
            details = {"rule": det.rule, **det.details}
            if d.nudge and not self._nudged:
                self._nudged = True
                self._arm_seq = None
                if d.nudge_message is not None:
                    message = d.nudge_message.replace("{what}", det.what)
                else:
                    message = (
                        f"You appear to be repeating yourself: {det.what}. Change your approach (different "
                        "arguments or a different tool), or, if you already have enough information, give "
                        "your final answer now."
                    )
                return StuckVerdict("nudge", det.reason, message, self._with_counts(details))
            after = " after being nudged to change approach" if self._nudged else ""
            return self._halt_with(det.reason, f"Stuck agent halted ({det.reason}): {det.why}{after}.", details)

    def _with_counts(self, details: dict[str, Any]) -> dict[str, Any]:
        details["iterations"] = self._iterations
        details["tool_calls"] = self._tool_calls
        details["nudged"] = self._nudged
        return details

    def _halt_with(self, reason: TerminationReason, message: str, details: dict[str, Any]) -> StuckVerdict:
        self._halt = StuckVerdict("halt", reason, message, self._with_counts(details))
        return self._halt

    def _detect(self, min_seq: int) -> _Detection | None:
        """The first rule (in report order) whose triggering event is at or after ``min_seq``."""
        return (
            self._identical(min_seq) or self._same_tool(min_seq) or self._similar(min_seq) or self._no_progress(min_seq)
        )

    def _identical(self, min_seq: int) -> _Detection | None:
        calls = self._calls
        n = len(calls)
        # one key repeated r times leaves at most n - r + 1 distinct keys: the usual case exits here
        if n - len({(c.name, c.key) for c in calls}) < self._d.repeat_limit - 1:
            return None
        counts: dict[tuple[str, str], list[int]] = {}  # (name, key) -> [count, latest seq]
        for c in calls:
            entry = counts.get((c.name, c.key))
            if entry is None:
                counts[(c.name, c.key)] = [1, c.seq]
            else:
                entry[0] += 1
                entry[1] = c.seq
        best: tuple[int, str, str] | None = None
        for (name, key), (count, latest) in counts.items():
            if count >= self._d.repeat_limit and latest >= min_seq and (best is None or count > best[0]):
                best = (count, name, key)
        if best is None:
            return None
        count, name, key = best
        return _Detection(
            TerminationReason.REPEATED_TOOL, "identical_args",
            f"calling `{name}` with the same arguments ({short(key)}) {count} times in your last {n} tool calls",
            f"the agent called `{name}` with the same arguments {count} times in its last {n} tool calls",
            {"tool": name, "args": short(key), "count": count, "last_calls": n},
        )  # fmt: skip

    def _same_tool(self, min_seq: int) -> _Detection | None:
        calls = self._calls
        window = self._d.window
        needed = self._share_needed
        if len(calls) < window or window - len({c.name for c in calls}) < needed - 1:
            return None
        counts: dict[str, int] = {}
        for c in calls:
            counts[c.name] = counts.get(c.name, 0) + 1
        for name, count in sorted(counts.items(), key=lambda kv: -kv[1]):
            if count < needed:
                break
            keys: set[str] = set()
            unproductive = 0
            trigger = 0
            productive = False
            for c in calls:
                if c.name != name:
                    continue
                if c.state == _NEW:
                    productive = True
                    break
                if c.state == _STALE or c.key in keys:
                    unproductive += 1
                keys.add(c.key)
                trigger = max(trigger, c.seq, c.rseq)
            if productive or unproductive < needed - 1 or trigger < min_seq:
                continue
            return _Detection(
                TerminationReason.REPEATED_TOOL, "same_tool",
                f"calling `{name}` in {count} of your last {window} tool calls without getting any new result",
                f"the agent called `{name}` in {count} of its last {window} tool calls without getting any "
                "new result",
                {"tool": name, "count": count, "window": window, "unproductive": unproductive},
            )  # fmt: skip
        return None

    def _similar(self, min_seq: int) -> _Detection | None:
        sim = self._sim
        if sim is None or sim[1] < min_seq:
            return None
        score, _, measure = sim
        return _Detection(
            TerminationReason.SIMILARITY_LOOP, "similarity",
            f"giving nearly the same response as your previous one ({score:.0%} similar)",
            f"two consecutive model outputs were {score:.0%} similar (threshold {self._d.similarity:.0%})",
            {"score": round(score, 4), "threshold": self._d.similarity, "measure": measure},
        )  # fmt: skip

    def _no_progress(self, min_seq: int) -> _Detection | None:
        run = self._stale_run
        if run < self._d.no_progress_steps or self._stale_seq < min_seq:
            return None
        return _Detection(
            TerminationReason.NO_PROGRESS, "no_progress",
            f"making tool calls that return nothing new (your last {run} tool results were all ones you had "
            "already seen)",
            f"its last {run} tool results were all ones it had already seen",
            {"steps_without_progress": run, "limit": self._d.no_progress_steps},
        )  # fmt: skip

    # -- halting ---------------------------------------------------------------------------------

    def best_answer(self) -> str | None:
        """The latest non-empty model text, else the latest non-empty tool result, else ``None``."""
        with self._lock:
            return self._last_text if self._last_text is not None else self._last_result

    def halt_error(self, verdict: StuckVerdict) -> AgentHalted:
        """The :class:`AgentHalted` to raise for a ``"halt"`` verdict, with the best answer so far."""
        if verdict.action != "halt" or verdict.reason is None:
            raise ValueError(f"halt_error() needs a 'halt' verdict, got {verdict.action!r}")
        return AgentHalted(verdict.reason, verdict.message, details=verdict.details, partial=self.best_answer())

    def __repr__(self) -> str:
        state = "halted" if self._halt is not None else ("nudged" if self._nudged else "ok")
        return f"StuckMonitor(iterations={self._iterations}, tool_calls={self._tool_calls}, state={state})"
