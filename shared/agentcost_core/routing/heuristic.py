"""The heuristic complexity score: cheap text features → a score in [0, 1] → a tier.

Features (each a count or a flag: word-set intersections and substring checks on the lower-cased
request, mostly its first 200 and last 120 characters where instructions sit, so a decision costs
microseconds whatever the prompt size):

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

from typing import Iterable, Sequence

from ..errors import ConfigurationError
from .decision import RouteRequest, RoutingDecision
from .policy import Policy
from .tiers import TierSet

__all__ = ["HeuristicPolicy", "complexity"]

# Cue vocabularies. Single words are matched as a set intersection with the request's words, phrases
# as substrings of the lower-cased request: no large case-insensitive regex alternations on the hot path.
_REASONING_WORDS = frozenset(
    "why explain analyse analyze analysis evaluate assess recommend design architect architecture plan strategy "
    "strategise strategize prove proof derive optimise optimize debug diagnose investigate critique justify "
    "implication implications forecast predict tradeoff tradeoffs trade-off trade-offs propose review interpret "
    "identify outline bottleneck bottlenecks migrate migrating migration schedule curriculum".split()
)
_REASONING_PHRASES = (
    "root cause", "reason about", "what would happen", "figure out", "show that", "how would you", "how should",
    "should i ", "should we ", "help me choose", "help me decide", "help me figure", "help me plan", "help me compare",
    "draft a ", "single point of failure", "single points of failure", "roll out", "rolling out", "onboarding program",
)  # fmt: skip
_COMPARISON_WORDS = frozenset("compare comparison contrast versus vs".split())
_COMPARISON_PHRASES = ("pros and cons", "which is better", "better than", "difference between", "differences between",
                       "choose between", "or should")  # fmt: skip
_MULTI_PHRASES = ("step by step", "step-by-step", "and then", "walk me through", "for each", "multi-step")
_CODE_VERBS = frozenset("write implement build create generate refactor debug port".split())
_CODE_NOUNS = frozenset(
    "function class script program code api endpoint query test tests module service algorithm regex sql component "
    "workflow parser tokenizer limiter cli bash python java rust go typescript javascript react kotlin swift c++".split()
)
_CODE_MARKERS = ("```", "def ", "class ", "traceback (most recent", "function ", "=>", "#include", "public ", "const ",
                 "select ", "import ")  # fmt: skip
# (every marker's code carries a backtick, a parenthesis, "=", "#" or "{" somewhere: checked first)
_BUG_WORDS = frozenset(
    "bug bugs hang hangs throw throws exception error fails fail failing crash crashes crashing leak leaks leaking "
    "oom ooms refused wrong breaks".split()
)
_BUG_PHRASES = ("doesn't work", "not working")
_MATH_WORDS = frozenset(
    "prove derive integral derivative probability theorem lemma equation optimal divisible compound compounded "
    "compounding apr interest break-even breakeven significance significant knight knights knave knaves puzzle".split()
)
_MATH_PHRASES = ("expected value", "expected number", "solve for", "how many ways", "monthly payment", "conversion rate")
_CREATIVE_NOUNS = frozenset(
    "story speech sonnet poem post essay article sequence newsletter script release letter proposal".split()
)
_SIMPLE_WORDS = frozenset(
    "extract classify categorise categorize label format reformat convert translate spell capitalise capitalize "
    "rename lowercase uppercase sentiment one-liner".split()
)
_SIMPLE_PHRASES = (
    "list the", "list all", "return only", "yes or no", "true or false", "which category", "which department",
    "which label", "one word", "one sentence", "one line", "json with", "as json", "as a table", "fill in", "look up",
    "what is the order", "what is the tracking", "what is the invoice", "what is the date", "what is the name",
    "what is the email", "what is the phone", "what is the total", "what is the status", "what is the price",
    "what is the amount", "detect the language", "put each", "which of", "pull out", "find the", "get the",
    "turn this into",
)  # fmt: skip
_PUNCT = b".,;:!?()[]{}\"`<>|=*/\\@#&~$%^\n\t\r"
_SPACES = bytes.maketrans(_PUNCT, b" " * len(_PUNCT))
_ONLY_DIGITS = bytes(b if 48 <= b <= 57 else 32 for b in range(256))  # digits kept, all else a space


def _after_number(text: str, suffix: str, min_digits: int) -> bool:
    """``suffix`` right after a number of at least ``min_digits`` digits ("800-word", "6-email")."""
    i = text.find(suffix)
    tries = 0
    while i != -1 and tries < 6:
        tries += 1
        j = i
        while j > 0 and text[j - 1].isdigit():
            j -= 1
        if i - j >= min_digits:
            return True
        i = text.find(suffix, i + 1)
    return False


def _between_numbers(text: str, op: str) -> bool:
    """``op`` between two numbers, spaces allowed ("2 * 3", "n^2", "10/4")."""
    i = text.find(op)
    tries = 0
    while i != -1 and tries < 6:  # a log full of slashes must not cost more than a few checks
        tries += 1
        left = text[max(0, i - 2) : i].strip()
        right = text[i + 1 : i + 3].strip()
        if left and right and right[:1].isdigit() and (left[-1:].isdigit() or left[-1:] == "n"):
            return True
        i = text.find(op, i + 1)
    return False

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


def _b(words: frozenset[str]) -> frozenset[bytes]:
    return frozenset(w.encode() for w in words)


_REASONING_WORDS, _COMPARISON_WORDS, _CODE_VERBS, _CODE_NOUNS = (
    _b(_REASONING_WORDS), _b(_COMPARISON_WORDS), _b(_CODE_VERBS), _b(_CODE_NOUNS),
)  # fmt: skip
_BUG_WORDS, _MATH_WORDS, _CREATIVE_NOUNS, _SIMPLE_WORDS = (
    _b(_BUG_WORDS), _b(_MATH_WORDS), _b(_CREATIVE_NOUNS), _b(_SIMPLE_WORDS),
)  # fmt: skip

# Phrases indexed by their first word: only phrases whose first word is in the request are searched.
_PHRASE_GROUPS = {
    "reasoning": _REASONING_PHRASES, "comparison": _COMPARISON_PHRASES, "multi_step": _MULTI_PHRASES,
    "code_bug": _BUG_PHRASES, "math": _MATH_PHRASES, "simple": _SIMPLE_PHRASES,
}  # fmt: skip
_PHRASE_INDEX: dict[bytes, list[tuple[str, str]]] = {}
for _group, _list in _PHRASE_GROUPS.items():
    for _phrase in _list:
        _PHRASE_INDEX.setdefault(_phrase.split()[0].split("-")[0].encode(), []).append((_group, _phrase))
_PHRASE_KEYS = frozenset(_PHRASE_INDEX)
_NO_PHRASES = dict.fromkeys(_PHRASE_GROUPS, 0)
del _group, _list, _phrase


def _phrase_counts(ask: str, vocab: set[bytes]) -> dict[str, int]:
    counts = dict(_NO_PHRASES)
    for w in vocab & _PHRASE_KEYS:
        for group, phrase in _PHRASE_INDEX[w]:
            if phrase in ask:
                counts[group] += 1
    return counts


def complexity(request: RouteRequest) -> tuple[float, dict[str, float]]:
    """(score in [0, 1], features) for a request."""
    text = request.text
    words = text.count(" ", 0, 2000) + 1  # only "more than 150 words" matters
    n = len(text)
    top = (text[:800] if n > 800 else text).lower()  # pasted code shows in its first lines
    ask = top if n <= 320 else top[:200] + "\n" + text[-120:].lower()  # where instructions usually are
    raw_ask = ask.encode()
    vocab = set(raw_ask.translate(_SPACES).split())  # bytes words: no decode on the hot path
    numbers = len(raw_ask.translate(_ONLY_DIGITS).split())  # runs of digits, counted in C
    ph = _phrase_counts(ask, vocab)
    code = 0.0
    if "`" in top or "(" in top or "=" in top or "#" in top or "{" in top:  # code needs one of these
        code = 1.0 if any(m in top for m in _CODE_MARKERS) else 0.0
    code_task = bool(vocab & _CODE_VERBS) and bool(vocab & _CODE_NOUNS)
    creative = ("write a" in ask or "write an" in ask or "write me" in ask) and bool(vocab & _CREATIVE_NOUNS)
    if not creative and numbers:
        creative = _after_number(ask, "-word", 3) or _after_number(ask, " word", 3) or _after_number(ask, "-email", 1)
    arith = numbers > 1 and (_between_numbers(ask, "^") or _between_numbers(ask, "*") or _between_numbers(ask, "/"))
    quantitative = numbers + ("$" in ask) + ("%" in ask) >= 3
    numbered = 1 if ("\n1." in text[:1500] or "\n1)" in text[:1500] or text.startswith(("1.", "1)"))) else 0
    reasoning = len(vocab & _REASONING_WORDS) + ph["reasoning"]
    comparison = len(vocab & _COMPARISON_WORDS) + ph["comparison"]
    multi = ph["multi_step"] + numbered
    math = len(vocab & _MATH_WORDS) + ph["math"] + (1 if arith else 0)
    simple = len(vocab & _SIMPLE_WORDS) + ph["simple"]
    f = {
        "reasoning": reasoning if reasoning < 2 else 2,
        "comparison": comparison if comparison < 2 else 2,
        "multi_step": multi if multi < 2 else 2,
        "code_task": 1.0 if code_task else 0.0,
        "code_bug": 1.0 if code and (vocab & _BUG_WORDS or ph["code_bug"]) else 0.0,
        "code": code,
        "math": math if math < 2 else 2,
        "quantitative": 1.0 if quantitative else 0.0,
        "creative": 1.0 if creative else 0.0,
        "simple": simple if simple < 2 else 2,
        "long_request": 1.0 if words > 150 else 0.0,
        "big_context": 1.0 if request.context_tokens > 8000 else 0.0,
        "many_tools": 1.0 if request.tools > 3 else 0.0,
    }
    raw = 0.25
    for name, value in f.items():  # 13 features, weights in _WEIGHTS
        if value:
            raw += _WEIGHTS[name] * value
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
        score, features = complexity(request)
        k = 0
        while k < len(self.thresholds) and score >= self.thresholds[k]:
            k += 1
        tier = self.tiers[k]
        return RoutingDecision(tier, f"complexity {score:.2f}", "heuristic", score, features)  # timed by the Router

    def __repr__(self) -> str:
        return f"HeuristicPolicy(tiers={self.tiers!r}, thresholds={self.thresholds!r})"
