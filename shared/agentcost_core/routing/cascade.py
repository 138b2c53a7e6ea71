"""The cascade chooser: try the cheap tier first, escalate when its answer is rejected.

``CascadePolicy(("nano", "frontier"), validator)`` always chooses the first listed tier.
:class:`~agentcost_core.routing.Dispatch` (used by ``agentcost_langchain.ModelRouter`` and
``RouterMiddleware`` and by ``agentcost_llamaindex.RouterLLM``) then calls that tier, asks
:meth:`CascadePolicy.validate` about the answer and, when it is rejected, calls
:meth:`CascadePolicy.next_tier` — at most ``max_escalations`` times. Every call is billed and
recorded, so the ledger shows what the escalations cost.

``validator`` may be:

* a callable ``(text) -> bool | str | None``: ``True`` / ``None`` accept, ``False`` rejects, a
  string rejects with that reason (``lambda t: "refund" in t or "no refund mentioned"``); a
  ``(ok, reason)`` tuple is also understood; an exception raised by it rejects the answer;
* a pydantic model class: the answer must parse as JSON into it (a fenced code block or prose
  around one JSON object is tolerated);
* ``None`` with ``min_confidence``: accept when the mean token probability, ``exp(mean logprob)``,
  is at least ``min_confidence``; with no logprobs available the answer is accepted (and the
  reason says so). ``min_confidence`` may also be combined with a validator (checked after it).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable, Iterable, Sequence

from ..errors import ConfigurationError
from .decision import RouteRequest, RoutingDecision
from .policy import Policy
from .tiers import TierSet

__all__ = ["CascadePolicy", "escalation_reason"]

_FENCE = re.compile(r"```[ \t]*(?:json|JSON|jsonc|json5)?[ \t]*\r?\n?(.*?)```", re.S)


def escalation_reason(reason: str, from_tier: str, to_tier: str) -> str:
    """The reason recorded on an escalated call: ``cascade: nano answer rejected (why); escalated to frontier``."""
    return f"cascade: {from_tier} answer rejected ({reason}); escalated to {to_tier}"


def _json_candidates(text: str) -> list[str]:
    """The answer, then any fenced block, then the outermost {...} / [...] span."""
    out = [text.strip()]
    out.extend(m.group(1).strip() for m in _FENCE.finditer(text))
    for open_, close in (("{", "}"), ("[", "]")):
        a, b = text.find(open_), text.rfind(close)
        if 0 <= a < b:
            out.append(text[a : b + 1])
    seen: list[str] = []
    for c in out:
        if c and c not in seen:
            seen.append(c)
    return seen


def _pydantic_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    try:
        items = errors() if callable(errors) else None
    except Exception:  # pragma: no cover - defensive: odd error objects
        items = None
    if items:
        first = items[0]
        loc = ".".join(str(p) for p in first.get("loc", ())) or "answer"
        more = f" (+{len(items) - 1} more)" if len(items) > 1 else ""
        return f"{loc}: {first.get('msg', 'invalid')}{more}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _schema_checker(schema: Any) -> Callable[[str], tuple[bool, str]] | None:
    """A JSON-into-schema check for a pydantic v2 model class / TypeAdapter (or a v1 model class)."""
    if isinstance(schema, type) and hasattr(schema, "model_validate_json"):
        parse, name = schema.model_validate_json, schema.__name__
    elif isinstance(schema, type) and hasattr(schema, "parse_raw"):
        parse, name = schema.parse_raw, schema.__name__
    elif not isinstance(schema, type) and callable(getattr(schema, "validate_json", None)):
        parse, name = schema.validate_json, "the schema"
    else:
        return None

    def check(text: str) -> tuple[bool, str]:
        json_error = schema_error = None
        for candidate in _json_candidates(text):
            try:
                json.loads(candidate)
            except ValueError as exc:
                json_error = json_error or f"not JSON ({exc})"
                continue
            try:
                parse(candidate)
            except Exception as exc:  # pydantic ValidationError (ValueError on v1)
                schema_error = schema_error or _pydantic_error(exc)
                continue
            return True, f"answer parses as {name}"
        if schema_error is None and json_error is None:
            return False, f"empty answer, expected JSON for {name}"
        return False, f"answer does not parse as {name}: {schema_error or json_error}"

    return check


def _callable_checker(fn: Callable[[str], Any]) -> Callable[[str], tuple[bool, str]]:
    def check(text: str) -> tuple[bool, str]:
        try:
            result = fn(text)
        except Exception as exc:  # a validator that cannot read the answer rejects it
            return False, f"validator raised {type(exc).__name__}: {exc}"
        if result is None or result is True:
            return True, "validator accepted the answer"
        if result is False:
            return False, "validator rejected the answer"
        if isinstance(result, str):
            return False, result or "validator rejected the answer"
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], bool):
            ok, why = result
            return ok, str(why) if why else ("validator accepted the answer" if ok else "validator rejected the answer")
        return (True, "validator accepted the answer") if result else (False, "validator rejected the answer")

    return check


def _logprobs_from(raw: Any) -> list[float] | None:
    """Token logprobs from a LangChain AIMessage, a LlamaIndex Chat/CompletionResponse, an OpenAI
    response object or its dict form; None when the response carries none."""
    if raw is None:
        return None
    try:
        md = getattr(raw, "response_metadata", None)
        lp = md.get("logprobs") if isinstance(md, dict) else None
        if lp is None and isinstance(raw, dict):
            lp = raw.get("logprobs")
            if lp is None and isinstance(raw.get("choices"), list) and raw["choices"]:
                lp = raw["choices"][0].get("logprobs")
        if lp is None and not isinstance(raw, dict):
            li = getattr(raw, "logprobs", None)  # LlamaIndex: list (per token) of top-logprob lists
            if isinstance(li, list) and li:
                vals = []
                for alts in li:
                    got = (
                        [getattr(a, "logprob", None) for a in alts]
                        if isinstance(alts, list)
                        else [getattr(alts, "logprob", None)]
                    )
                    got = [g for g in got if isinstance(g, (int, float))]
                    if got:
                        vals.append(float(max(got)))  # the sampled token is (almost always) the top one
                return vals or None
            choices = getattr(raw, "choices", None)  # OpenAI SDK response
            if choices:
                lp = getattr(choices[0], "logprobs", None)
        if lp is None:
            return None
        content = lp.get("content") if isinstance(lp, dict) else getattr(lp, "content", lp)
        if isinstance(content, list):
            vals = [t.get("logprob") if isinstance(t, dict) else getattr(t, "logprob", t) for t in content]
            vals = [float(v) for v in vals if isinstance(v, (int, float))]
            return vals or None
    except Exception:  # pragma: no cover - best effort over foreign objects
        return None
    return None


class CascadePolicy(Policy):
    """``CascadePolicy(tiers=("nano", "frontier"), validator=None, *, min_confidence=None, max_escalations=1)``."""

    name = "cascade"

    def __init__(
        self,
        tiers: Sequence[str] = ("nano", "frontier"),
        validator: Any = None,
        *,
        min_confidence: float | None = None,
        max_escalations: int = 1,
    ) -> None:
        if isinstance(tiers, str):
            raise ConfigurationError("CascadePolicy tiers= must be a sequence of tier names, cheapest first")
        self.tiers = tuple(tiers)
        if len(self.tiers) < 2:
            raise ConfigurationError(f"CascadePolicy needs at least two tiers to escalate between, got {self.tiers}")
        if any(not isinstance(t, str) or not t for t in self.tiers) or len(set(self.tiers)) != len(self.tiers):
            raise ConfigurationError(f"CascadePolicy tiers must be distinct non-empty names, got {self.tiers}")
        if isinstance(max_escalations, bool) or not isinstance(max_escalations, int) or max_escalations < 0:
            raise ConfigurationError(f"CascadePolicy max_escalations must be an integer >= 0, got {max_escalations!r}")
        if min_confidence is not None:
            if isinstance(min_confidence, bool) or not 0.0 < float(min_confidence) <= 1.0:
                raise ConfigurationError(f"CascadePolicy min_confidence must be within (0, 1], got {min_confidence!r}")
            min_confidence = float(min_confidence)
        if validator is None and min_confidence is None:
            raise ConfigurationError("CascadePolicy needs a validator (callable or pydantic schema) or min_confidence")
        check = None
        if validator is not None:
            check = _schema_checker(validator)
            if check is None:
                if not callable(validator):
                    raise ConfigurationError(
                        f"CascadePolicy validator must be a callable (text) -> bool | str or a pydantic model, "
                        f"got {type(validator).__name__}"
                    )
                check = _callable_checker(validator)
        self.validator = validator
        self.min_confidence = min_confidence
        self.max_escalations = max_escalations
        self._check = check

    def tier_names(self) -> Iterable[str]:
        return self.tiers

    def choose(self, request: RouteRequest, tiers: TierSet) -> RoutingDecision:
        first = self.tiers[0]
        return RoutingDecision(first, f"cascade: try {first} first", "cascade")

    def next_tier(self, current: str) -> str | None:
        """The tier after ``current`` in the cascade (None: the last tier, or not a cascade tier)."""
        try:
            i = self.tiers.index(current)
        except ValueError:
            return None
        return self.tiers[i + 1] if i + 1 < len(self.tiers) else None

    def escalation_reason(self, reason: str, from_tier: str, to_tier: str) -> str:
        return escalation_reason(reason, from_tier, to_tier)

    @staticmethod
    def confidence(logprobs: Sequence[float]) -> float | None:
        """The mean token probability, ``exp(mean logprob)`` (None for no usable logprobs)."""
        vals = [float(v) for v in logprobs if v is not None and math.isfinite(float(v))]
        if not vals:
            return None
        return math.exp(math.fsum(vals) / len(vals))

    def validate(self, text: str, *, logprobs: Sequence[float] | None = None, raw: Any = None) -> tuple[bool, str]:
        """(accepted, reason) for an answer. ``logprobs`` (per output token) are read from ``raw``
        (a LangChain / LlamaIndex / OpenAI response) when not given."""
        text = text if isinstance(text, str) else ("" if text is None else str(text))
        reasons = []
        if self._check is not None:
            ok, why = self._check(text)
            if not ok:
                return False, why
            reasons.append(why)
        if self.min_confidence is not None:
            if logprobs is None:
                logprobs = _logprobs_from(raw)
            conf = self.confidence(logprobs) if logprobs else None
            if conf is None:
                reasons.append("no logprobs available: accepted without a confidence check")
            elif conf < self.min_confidence:
                return False, f"low confidence {conf:.2f} < {self.min_confidence:.2f}"
            else:
                reasons.append(f"confidence {conf:.2f} >= {self.min_confidence:.2f}")
        return True, "; ".join(reasons)

    def __repr__(self) -> str:
        v = getattr(self.validator, "__name__", type(self.validator).__name__) if self.validator is not None else None
        return (
            f"CascadePolicy(tiers={self.tiers!r}, validator={v}, min_confidence={self.min_confidence!r}, "
            f"max_escalations={self.max_escalations})"
        )
