"""Stuck-agent detection: a looping agent gets one nudge, then a halt with the best answer so far.

A :class:`StuckDetector` is the configuration (immutable, validated, shared by every run);
``detector.start()`` gives a :class:`StuckMonitor`, the per-run state the adapters feed after every
model step (:meth:`~StuckMonitor.record_model_output`), tool call
(:meth:`~StuckMonitor.record_tool_call`) and tool result (:meth:`~StuckMonitor.record_tool_result`),
and ask :meth:`~StuckMonitor.check` for a :class:`StuckVerdict`: ``"ok"``, ``"nudge"`` (inject
``verdict.message`` into the model's next input) or ``"halt"`` (raise
``monitor.halt_error(verdict)``, an :class:`~agentcost_core.halts.AgentHalted` carrying the
:class:`~agentcost_core.halts.TerminationReason` and the best answer so far).

The rules, in the order a verdict reports them when several hold at once:

1. **Iteration cap** (``MAX_ITERATIONS``): more than ``max_iterations`` model steps. Halts at once,
   never nudges.
2. **Identical calls** (``REPEATED_TOOL``, ``details["rule"] == "identical_args"``): one tool with
   the same canonical arguments ``repeat_limit`` times among the last ``window`` tool calls
   (consecutive or not, so an A-B-A-B-A cycle counts too). Identical arguments are stuck whatever
   the tool returns: a polling tool must be given a larger ``repeat_limit`` (and ``window``).
3. **Same-tool share** (``REPEATED_TOOL``, ``details["rule"] == "same_tool"``): one tool makes at
   least ``same_tool_share`` of the last ``window`` tool calls (never fewer than 2) *and those calls
   are not producing anything new*: none of them returned a result unseen in this run, and all but
   at most one (typically the latest, whose result is still pending) are positively unproductive — their
   result repeated an earlier one, or their arguments repeat another call of the group. This is a
   deliberate narrowing of "same tool in >=80% of the last 5 calls": an agent that calls one search
   tool twenty times with different queries and gets different answers is working, not looping.
4. **Similar outputs** (``SIMILARITY_LOOP``): two consecutive non-empty model outputs at least
   ``similarity`` alike, with no new tool result between them (a ReAct agent whose templated
   "Thought/Action" text differs only in the query it sends, and gets new answers, is not
   looping). Empty outputs (pure tool-call steps) are skipped: they neither match nor break a match.
   The cheap measure is the Jaccard index of the two texts' character 3-gram sets, after lowercasing
   and collapsing whitespace (O(length), insensitive to small edits anywhere in the text; texts over
   8,000 characters are compared on their first and last 4,000). With ``embed`` it is the cosine of
   the two embeddings instead (falling back to the cheap measure if ``embed`` raises or returns
   vectors of different lengths).
5. **No progress** (``NO_PROGRESS``): the last ``no_progress_steps`` tool results were all seen
   before in this run. A step here is one tool call and its result, like an entry of LangChain's
   ``intermediate_steps``; an agent without tools never trips it (the cap and rule 4 cover those).

A result is *new* when its normalised text (whitespace collapsed; non-strings as sorted-key JSON)
was not seen earlier in the run, from any tool. Arguments are normalised to a canonical key:
sorted-key compact JSON (``default=str``), strings whitespace-collapsed, and a string that parses as
a JSON (or Python-literal) object/array is parsed first, so ``{"a": 1, "b": 2}``,
``{"b": 2, "a": 1}`` and ``"{'a': 1, 'b': 2}"`` are the same arguments.

So, with the defaults: the same call with the same arguments is nudged at its 3rd occurrence and
halted (``REPEATED_TOOL``) at the 4th. One tool called with different arguments whose results keep
repeating (a search that finds nothing new) is nudged after its 4th stale result (rule 5,
``NO_PROGRESS``, when the adapter checks after tool results; rule 3 at the next call when it checks
only after model steps) and halted by rule 3 (``REPEATED_TOOL``) at its next call after the nudge.

Nudge then halt: the first detection returns ``"nudge"`` once (or ``"halt"`` when ``nudge=False``).
After the nudge the model must get a chance to react, so only evidence from its next step counts: a
later detection halts only if the event that triggered it (the repeated call, the similar output,
the stale result) was recorded at or after the first model output following the nudge (or, for an
adapter that records no model outputs, the first tool call after it). Until then ``check()`` says
``"ok"``. A halt is final: every later ``check()`` returns the same verdict.

Tool calls may be reported twice, by the adapter that sees the model's requested calls
(``record_model_output(text, tool_calls)``) and by the one that sees their execution
(``record_tool_call``): an executed call is matched to a call announced by the latest model output
(same name and arguments, else same name) and not counted again.

Cost: every ``record_*`` and ``check()`` is O(window) plus the length of the text it is given;
per-run memory is bounded by ``window`` except for the set of hashes of the distinct tool results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from .stuck_monitor import StuckMonitor, StuckVerdict

__all__ = ["StuckDetector", "StuckMonitor", "StuckVerdict"]





@dataclass(frozen=True, slots=True, kw_only=True)
class StuckDetector:
    """Stuck-detection settings, shared by many runs; :meth:`start` gives one run its monitor.

    - ``window``: how many recent tool calls the tool rules look at (>= 2).
    - ``same_tool_share``: share of the window one unproductive tool must take, in (0, 1].
    - ``repeat_limit``: identical calls (same tool, same arguments) in the window that count as
      stuck (2 .. ``window``).
    - ``similarity``: consecutive outputs at least this alike are a loop, in (0, 1].
    - ``embed``: optional ``Callable[[str], Sequence[float]]``; cosine similarity of its vectors
      replaces the cheap character-3-gram Jaccard measure.
    - ``no_progress_steps``: tool results in a row already seen in the run that count as stuck.
    - ``max_iterations``: halt (without a nudge) once more model steps than this were recorded.
    - ``nudge``: give the agent one nudge before halting (``False``: halt at the first detection).
    - ``nudge_message``: custom nudge text; ``{what}`` in it is replaced by what repeats.

    See the module documentation for the exact rules.
    """

    window: int = 5
    same_tool_share: float = 0.8
    repeat_limit: int = 3
    similarity: float = 0.9
    embed: Callable[[str], Sequence[float]] | None = None
    no_progress_steps: int = 4
    max_iterations: int | None = None
    nudge: bool = True
    nudge_message: str | None = None

    def __post_init__(self) -> None:
        _check_count("window", self.window, 2)
        _check_fraction("same_tool_share", self.same_tool_share)
        _check_count("repeat_limit", self.repeat_limit, 2)
        if self.repeat_limit > self.window:
            raise ConfigurationError(
                f"StuckDetector: repeat_limit ({self.repeat_limit}) cannot exceed window ({self.window}): "
                "the identical-call rule could never fire; raise window too"
            )
        _check_fraction("similarity", self.similarity)
        if self.embed is not None and not callable(self.embed):
            raise ConfigurationError(
                f"StuckDetector: embed must be a callable str -> sequence of floats, got {type(self.embed).__name__}"
            )
        _check_count("no_progress_steps", self.no_progress_steps, 1)
        if self.max_iterations is not None:
            _check_count("max_iterations", self.max_iterations, 1)
        if not isinstance(self.nudge, bool):
            raise ConfigurationError(f"StuckDetector: nudge must be True or False, got {self.nudge!r}")
        if self.nudge_message is not None and (
            not isinstance(self.nudge_message, str) or not self.nudge_message.strip()
        ):
            raise ConfigurationError(
                f"StuckDetector: nudge_message must be a non-empty string or None, got {self.nudge_message!r}"
            )

    def start(self) -> StuckMonitor:
        """A fresh monitor for one agent run."""
        return StuckMonitor(self)


def _check_count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"StuckDetector: {name} must be an integer >= {minimum}, got {value!r}")


def _check_fraction(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value <= 1):
        raise ConfigurationError(f"StuckDetector: {name} must be a number in (0, 1], got {value!r}")


