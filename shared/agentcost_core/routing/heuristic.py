"""The heuristic complexity score: cheap text features → a score in [0, 1] → a tier.

Features (each a count or a flag, read with a handful of precompiled regexes over at most the
first 3,000 and last 1,000 characters, so a decision costs microseconds whatever the prompt size):

* ``reasoning`` — why / explain / analyse / evaluate / design / plan / prove / optimise / debug …
* ``comparison`` — compare / versus / trade-offs / pros and cons / which is better …
* ``multi_step`` — first … then / step by step / numbered instructions / for each …
* ``code_task`` — write / implement / refactor / debug + function / class / script / query …
* ``code`` — code or a stack trace in the prompt (fences, ``def``, ``Traceback`` …)
* ``math`` — prove / derive / probability / equations
* ``simple`` — extract / classify / label / format / convert / translate / list / yes-or-no: the
  answer is in the input (lowers the score)
* ``length`` — words of the request; ``context`` — prompt tokens; ``tools`` — tools offered

The weights were set on the labelled prompts in ``tests/data/routing_prompts.jsonl`` (rules in
``tests/data/ROUTING_LABELS.md``); thresholds are configurable.
"""

from __future__ import annotations

import re
import time
from typing import Iterable, Sequence

from ..errors import ConfigurationError
from .decision import RouteRequest, RoutingDecision
from .policy import Policy
from .tiers import TierSet

__all__ = ["HeuristicPolicy", "complexity"]

_I = re.IGNORECASE
_REASONING = re.compile(
    r"\b(why|explain|analy[sz]e|analysis|evaluate|assess|recommend|design|architect\w*|plan|strategy|strategi[sz]e|"
    r"prove|proof|show that|derive|optimi[sz]e|debug|diagnose|root cause|investigate|critique|justify|reason about|"
    r"implications?|forecast|predict|trade-?offs?|what would happen|figure out|propose|review|interpret|identify|"
    r"how would you|how should|should i|should we|help me (?:choose|decide|figure|plan|compare)|outline|draft a|"
    r"bottlenecks?|single points? of failure|migrat\w+|roll(?:ing)? ?out|schedule|onboarding program|curriculum)\b",
    _I,
)
_COMPARISON = re.compile(r"\b(compare|comparison|contrast|versus|vs\.?|pros and cons|which is better|better than|differences? between|choose between|or should)\b", _I)
_MULTI = re.compile(r"\b(step[- ]by[- ]step|first\b.{0,80}\bthen|and then|walk me through|for each|multi-step)\b|^\s*\d+[.)]\s", _I | re.M | re.S)
_CODE_TASK = re.compile(
    r"\b(write|implement|build|create|generate|refactor|debug|port)\b[^.?!\n]{0,80}"
    r"\b(function|class|script|program|code|api|endpoint|query|tests?|module|service|algorithm|regex|sql|component|"
    r"workflow|parser|tokenizer|limiter|cli|bash|python|java|rust|go|typescript|javascript|react|kotlin|swift|c\+\+)\b",
    _I,
)
_CODE = re.compile(r"```|\bdef \w+\(|\bclass \w+[:(]|Traceback \(most recent|\bfunction \w*\(|=>|\bSELECT\b.+\bFROM\b|#include|\bpublic \w+ \w+\(|\bconst \w+ =", re.S)
_BUG = re.compile(r"\b(bug|hangs?|throws?|exception|error|fails?|failing|crash\w*|leak\w*|OOMs?|refused|wrong|doesn't work|not working|breaks?)\b", _I)
_MATH = re.compile(
    r"\b(prove|derive|integral|derivative|probability|expected (?:value|number)|theorem|lemma|solve for|equation|optimal|"
    r"how many ways|divisible|compound\w*|APR|interest|monthly payment|break-?even|conversion rate|significan\w+|"
    r"knights?|knaves?|puzzle)\b|\d\s*[\^*/]\s*\d|\bn\^\d",
    _I,
)
_QUANT = re.compile(r"\$\s?\d|\d+(?:\.\d+)?\s?%|\b\d{2,}\b")
_CREATIVE = re.compile(
    r"\bwrite (?:a|an|me a)\b[^.?!\n]{0,60}\b(story|speech|sonnet|poem|blog post|post|essay|article|email sequence|"
    r"sequence|newsletter|script|press release|cover letter|proposal)\b|\b\d{3,}[- ]word\b|\b\d+-email\b",
    _I,
)
_SIMPLE = re.compile(
    r"\b(extract|classify|categori[sz]e|label|format|reformat|convert|translate|list (?:the|all)|return only|"
    r"yes or no|true or false|which (?:category|department|label)|spell|capitali[sz]e|rename|lowercase|uppercase|"
    r"one word|one sentence|one line|json with|as json|as a table|fill in|look up|what is the (?:order|tracking|invoice|"
    r"date|name|email|phone|total|status|price|amount)|detect the language|sentiment|put each|which of|one-liner|"
    r"pull out|find the|get the|turn this into|rewrite .{0,30} as)\b",
    _I,
)

_WEIGHTS = {
    "reasoning": 0.3,
    "comparison": 0.25,
    "multi_step": 0.15,
    "code_task": 0.4,
    "code_bug": 0.4,
    "code": 0.05,
    "math": 0.35,
    "quantitative": 0.12,
    "creative": 0.4,
    "simple": -0.45,
    "long_request": 0.1,
    "big_context": 0.08,
    "many_tools": 0.08,
}


def _window(text: str) -> str:
    return text if len(text) <= 4000 else text[:3000] + "\n" + text[-1000:]


def complexity(request: RouteRequest) -> tuple[float, dict[str, float]]:
    """(score in [0, 1], features) for a request."""
    text = _window(request.text)
    words = text.count(" ") + 1
    ask = text if len(text) <= 500 else text[:300] + "\n" + text[-200:]  # where instructions usually are
    code = 1.0 if _CODE.search(text) else 0.0
    f = {
        "reasoning": min(len(_REASONING.findall(ask)), 2),
        "comparison": min(len(_COMPARISON.findall(ask)), 2),
        "multi_step": min(len(_MULTI.findall(text)), 2),
        "code_task": 1.0 if _CODE_TASK.search(ask) else 0.0,
        "code_bug": 1.0 if code and _BUG.search(ask) else 0.0,
        "code": code,
        "math": min(len(_MATH.findall(text)), 2),
        "quantitative": 1.0 if len(_QUANT.findall(ask)) >= 3 else 0.0,
        "creative": 1.0 if _CREATIVE.search(ask) else 0.0,
        "simple": min(len(_SIMPLE.findall(ask)), 2),
        "long_request": 1.0 if words > 150 else 0.0,
        "big_context": 1.0 if request.context_tokens > 8000 else 0.0,
        "many_tools": 1.0 if request.tools > 3 else 0.0,
    }
    raw = 0.25 + sum(_WEIGHTS[k] * v for k, v in f.items())
    f["words"] = float(words)
    return max(0.0, min(1.0, raw)), f


class HeuristicPolicy(Policy):
    """``HeuristicPolicy(tiers=("nano", "frontier"), thresholds=None)``: rising complexity
    scores map to the named tiers in order (cheapest first). ``thresholds`` are the ascending
    cut points between consecutive tiers (default: evenly spaced, 0.5 for two tiers)."""

    name = "heuristic"

    def __init__(self, tiers: Sequence[str] = ("nano", "frontier"), thresholds: Sequence[float] | None = None) -> None:
        self.tiers = tuple(tiers)
        if not self.tiers:
            raise ConfigurationError("HeuristicPolicy needs at least one tier name")
        if thresholds is None:
            n = len(self.tiers)
            thresholds = [k / n for k in range(1, n)]
        self.thresholds = tuple(float(t) for t in thresholds)
        if len(self.thresholds) != len(self.tiers) - 1:
            raise ConfigurationError(
                f"HeuristicPolicy: {len(self.tiers)} tiers need {len(self.tiers) - 1} thresholds, got {len(self.thresholds)}"
            )
        if list(self.thresholds) != sorted(self.thresholds) or any(not 0 <= t <= 1 for t in self.thresholds):
            raise ConfigurationError(f"HeuristicPolicy thresholds must ascend within [0, 1], got {self.thresholds}")

    def tier_names(self) -> Iterable[str]:
        return self.tiers

    def choose(self, request: RouteRequest, tiers: TierSet) -> RoutingDecision:
        t0 = time.perf_counter()
        score, features = complexity(request)
        k = 0
        while k < len(self.thresholds) and score >= self.thresholds[k]:
            k += 1
        tier = self.tiers[k]
        top = sorted(((v * _WEIGHTS.get(n, 0), n) for n, v in features.items() if n in _WEIGHTS and v), reverse=True)
        why = ", ".join(n for _, n in top[:3]) or "no complexity cues"
        return RoutingDecision(tier, f"complexity {score:.2f} ({why})", "heuristic", score, features,
                               time.perf_counter() - t0)  # fmt: skip

    def __repr__(self) -> str:
        return f"HeuristicPolicy(tiers={self.tiers!r}, thresholds={self.thresholds!r})"
