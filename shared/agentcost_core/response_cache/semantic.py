"""When may an earlier answer serve a new query: the semantic cache's matching rules.

A candidate entry serves the new query only when ALL of these hold (checked in this order):

1. **Context**: the same context fingerprint (the engine hashes the system prompt, the tool schemas,
   the conversation before the last message and the model family). The same last message in a
   different conversation is a different question (GPTCache#8: "how old is he?" after two different
   questions returned the first person's age).
2. **Recency**: the entry is at most ``max_age`` seconds old (None: no limit here; the store's TTL
   still applies).
3. **Similarity**: the cosine similarity of the two query embeddings is at least ``threshold``
   (default 0.95; GPTCache's 0.8 and langchain-redis' distance 0.2 let unrelated questions share an
   answer, langchain-redis#22, LiteLLM#12234).
4. **Guards**: cheap lexical rules refuse pairs that embeddings place close together but that ask
   different things. Each compares facts extracted from the two query texts:
   - ``number``: the numbers (digits, number words "one".."twenty", "hundred"...; "1,000" = "1000",
     "five" = "5") and arithmetic operators between them must be the same sets.
   - ``id``: identifier-like tokens must be the same: tokens mixing letters and digits
     (``INV-2041``, ``gpt-4o``, ``Q3``), snake_case / camelCase / dotted names, paths, URLs, e-mails.
   - ``date``: month and weekday names, relative days and periods ("today", "tomorrow",
     "last week", "next month", "in an hour", "monthly") and numeric dates (``2024-01-15``,
     ``15/01/2024``) must be the same.
   - ``negation``: either both queries are negated or neither ("not", "no", "never", "without",
     "n't", ...); and neither may use a word whose opposite the other uses without it
     ("before"/"after", "over"/"under", "more"/"fewer", "on"/"off", "adults"/"children", ...), nor a
     word the other negates with a prefix ("install"/"uninstall", "connect"/"disconnect").
   - ``entity``: named entities must be the same: capitalised words after the first word of a
     sentence, all-caps and inner-caps words (``AWS``, ``OpenAI``, ``iPhone``), quoted strings and
     a short list of names people type in lower case (``windows``, ``mac``, ``python``, ``excel``);
     an entity of one query must occur as a word in the other, ignoring case. "X to Y" in one query
     and "Y to X" in the other is refused too (a conversion's direction), and so is "X bigger than Y"
     against "Y bigger than X".
   The rules look only at the two texts; they prefer a miss (one paid call) to a wrong answer.

Among acceptable candidates the most similar wins. ``explain`` says why the best candidate was
refused, for logs and counters. Pure code: no framework, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agentcost_core.errors import ConfigurationError

__all__ = [
    "DEFAULT_THRESHOLD",
    "GUARDS",
    "STRICT_GUARDS",
    "QueryFacts",
    "SemanticCandidate",
    "SemanticDecision",
    "SemanticMatcher",
    "SemanticQuery",
    "cosine",
    "guard_conflict",
    "query_facts",
    "strict_facts",
]

DEFAULT_THRESHOLD = 0.95
GUARDS = ("number", "id", "date", "negation", "entity")


@dataclass(frozen=True)
class SemanticQuery:
    """The new query: its text (the last user message), embedding, context fingerprint and time."""

    text: str
    vector: Sequence[float]
    context: str
    ts: float


@dataclass(frozen=True)
class SemanticCandidate:
    """A stored entry of the same scope partition that might answer the query."""

    key: str
    text: str
    vector: Sequence[float]
    context: str
    ts: float


@dataclass(frozen=True)
class SemanticDecision:
    """The outcome of a match: the hit (or None), why, and the best similarity seen.

    ``reason`` is ``"hit"``, ``"no_candidates"``, ``"context"``, ``"expired"``, ``"below_threshold"``
    or the name of the guard that refused the most similar candidate (one of ``GUARDS``).
    """

    hit: SemanticCandidate | None
    reason: str
    similarity: float | None = None
    candidate: SemanticCandidate | None = None


class SemanticMatcher:
    """Applies context, recency, similarity threshold and the lexical guards (see the module doc)."""

    def __init__(
        self, *, threshold: float = DEFAULT_THRESHOLD, max_age: float | None = None, guards: Iterable[str] = GUARDS
    ) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold <= 1.0:
            raise ConfigurationError(f"semantic threshold must be a number in (0, 1], got {threshold!r}")
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or max_age <= 0):
            raise ConfigurationError(f"semantic max_age must be a positive number of seconds or None, got {max_age!r}")
        chosen = (guards,) if isinstance(guards, str) else tuple(guards)
        unknown = sorted(set(chosen) - set(GUARDS))
        if unknown:
            raise ConfigurationError(f"unknown semantic guards {unknown}; choose among {list(GUARDS)}")
        self.guards = tuple(guard for guard in GUARDS if guard in chosen)
        self.threshold = float(threshold)
        self.max_age = None if max_age is None else float(max_age)

    def match(self, query: SemanticQuery, candidates: Sequence[SemanticCandidate]) -> SemanticCandidate | None:
        """The most similar acceptable candidate, or None."""
        return self.explain(query, candidates).hit

    def explain(self, query: SemanticQuery, candidates: Sequence[SemanticCandidate]) -> SemanticDecision:
        """Like ``match``, with the reason: for a miss, why the most promising candidate was refused."""
        if not candidates:
            return SemanticDecision(hit=None, reason="no_candidates")
        # Candidates that fail context or recency are refused before any vector work.
        refused: SemanticDecision | None = None
        scored: list[tuple[float, int, SemanticCandidate]] = []
        query_norm = math.hypot(*query.vector)
        for index, candidate in enumerate(candidates):
            if candidate.context != query.context:
                refused = refused or SemanticDecision(hit=None, reason="context", candidate=candidate)
                continue
            if self.max_age is not None and query.ts - candidate.ts > self.max_age:
                if refused is None or refused.reason == "context":
                    refused = SemanticDecision(hit=None, reason="expired", candidate=candidate)
                continue
            scored.append((_cosine(query.vector, query_norm, candidate.vector), index, candidate))
        if not scored:
            return refused or SemanticDecision(hit=None, reason="no_candidates")
        scored.sort(key=lambda item: (-item[0], item[1]))
        facts = query_facts(query.text)
        first_refusal: SemanticDecision | None = None
        for similarity, _, candidate in scored:
            if similarity < self.threshold:
                break
            conflict = guard_conflict(facts, query_facts(candidate.text), guards=self.guards) if self.guards else None
            if conflict is None:
                return SemanticDecision(hit=candidate, reason="hit", similarity=similarity, candidate=candidate)
            first_refusal = first_refusal or SemanticDecision(
                hit=None, reason=conflict, similarity=similarity, candidate=candidate
            )
        if first_refusal is not None:
            return first_refusal
        best_similarity, _, best = scored[0]
        return SemanticDecision(hit=None, reason="below_threshold", similarity=best_similarity, candidate=best)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0.0 when either is zero or their lengths differ)."""
    return _cosine(a, math.hypot(*a), b)


def _cosine(a: Sequence[float], a_norm: float, b: Sequence[float]) -> float:
    """From the norms and the distance, all computed in C: |a - b|^2 = |a|^2 + |b|^2 - 2 a.b."""
    if len(a) != len(b):
        return 0.0
    b_norm = math.hypot(*b)
    if a_norm == 0.0 or b_norm == 0.0:
        return 0.0
    distance = math.dist(a, b)
    return (a_norm * a_norm + b_norm * b_norm - distance * distance) / (2.0 * a_norm * b_norm)


# --- the lexical facts the guards compare -------------------------------------------------------


@dataclass(frozen=True)
class QueryFacts:
    """What the guards compare, extracted once per text by ``query_facts``."""

    words: frozenset[str]
    numbers: frozenset[str]
    operators: str
    ids: frozenset[str]
    dates: frozenset[str]
    negated: bool
    polar: frozenset[str]
    entities: frozenset[str]
    directions: frozenset[tuple[str, str]]


_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000", "dozen": "12",
    "half": "0.5", "twice": "2", "double": "2", "triple": "3",
}  # fmt: skip
_MONTHS = {
    "jan": "jan", "january": "jan", "feb": "feb", "february": "feb", "mar": "mar", "march": "mar",
    "apr": "apr", "april": "apr", "may": "may", "jun": "jun", "june": "jun", "jul": "jul", "july": "jul",
    "aug": "aug", "august": "aug", "sep": "sep", "sept": "sep", "september": "sep", "oct": "oct",
    "october": "oct", "nov": "nov", "november": "nov", "dec": "dec", "december": "dec",
    "monday": "mon", "tuesday": "tue", "wednesday": "wed", "thursday": "thu", "friday": "fri",
    "saturday": "sat", "sunday": "sun", "today": "today", "tonight": "today", "tomorrow": "tomorrow",
    "yesterday": "yesterday", "weekend": "weekend", "weekends": "weekend", "weekday": "weekday",
    "weekdays": "weekday", "mondays": "mon", "tuesdays": "tue", "wednesdays": "wed", "thursdays": "thu",
    "fridays": "fri", "saturdays": "sat", "sundays": "sun", "christmas": "christmas", "easter": "easter",
}  # fmt: skip
_PERIODS = r"(day|week|month|year|quarter|weekend|morning|evening|night|season|decade|century)"
_RELATIVE = re.compile(rf"\b(last|next|this|previous|past|coming|current)\s+{_PERIODS}\b")
_NEGATIONS = frozenset({
    "non", "not", "no", "never", "none", "nothing", "nobody", "nowhere", "neither", "nor", "without",
    "cannot", "cant", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "wont", "wouldnt",
    "shouldnt", "couldnt", "hasnt", "havent", "hadnt", "mustnt", "aint",
})  # fmt: skip
_OPPOSITES = (
    ("before", "after"), ("increase|raise", "decrease|reduce|lower"), ("increasing", "decreasing"),
    ("include|including|with", "exclude|excluding|without"), ("min|minimum", "max|maximum"),
    ("largest|biggest|big|large", "smallest|small"), ("highest|higher|high|top", "lowest|lower|low|bottom"),
    ("best|better", "worst|worse"), ("cheapest|cheaper|cheap", "expensive|priciest|pricier|pricey"),
    ("enable", "disable"), ("add", "remove|delete|drop"), ("encrypt", "decrypt"), ("encode", "decode"),
    ("upload", "download"), ("import", "export"), ("buy", "sell"), ("borrow", "lend"),
    ("above|over|more|greater|longer|most|bigger|larger|taller|wider|thicker|louder|stronger",
     "below|under|less|fewer|smaller|shorter|least|narrower|thinner|quieter|weaker"),
    ("beginner|beginners|basic|easy", "advanced|expert|hard"), ("indoor|indoors", "outdoor|outdoors"),
    ("spicy|hot", "mild"), ("formal", "informal|casual"), ("daytime", "nighttime"), ("rent", "buy"),
    ("first", "last"), ("oldest|older|old", "newest|newer|new|youngest|younger|young"),
    ("faster|fastest|fast", "slower|slowest|slow"), ("earliest|earlier|early", "latest|later|late"),
    ("input", "output"), ("inbound", "outbound"), ("ascending", "descending"), ("start", "stop|end"),
    ("open", "close"), ("on", "off"), ("up", "down"), ("in", "out"), ("inside", "outside"), ("near", "far"),
    ("win", "lose"), ("pros", "cons"), ("true", "false"), ("positive", "negative"), ("pass", "fail"),
    ("success|successful", "failure|failed"), ("north", "south"), ("east", "west"), ("left", "right"),
    ("push", "pull"), ("send", "receive"), ("allow|approve|accept|accepting", "deny|reject|decline|declining"),
    ("advantages", "disadvantages"), ("male|men|man|boys|boy", "female|women|woman|girls|girl"),
    ("adult|adults", "child|children|kids|kid"), ("hot|warm", "cold|cool"), ("wet", "dry"), ("full", "empty"),
    ("heavy", "light"), ("long", "short"), ("private", "public"),
)  # fmt: skip
_OPPOSITE: dict[str, frozenset[str]] = {}
for _side_a, _side_b in _OPPOSITES:
    for _one, _other in ((_side_a, _side_b), (_side_b, _side_a)):
        for _word in _one.split("|"):
            _OPPOSITE[_word] = _OPPOSITE.get(_word, frozenset()) | frozenset(_other.split("|"))
_NEGATING_PREFIXES = ("un", "dis", "de")  # install / uninstall, connect / disconnect, activate / deactivate
# Names people type in lower case that the capitalisation rule would miss (platforms, languages, tools).
_KNOWN_NAMES = frozenset({
    "windows", "mac", "macos", "linux", "ubuntu", "debian", "fedora", "android", "ios", "iphone", "ipad",
    "chrome", "firefox", "safari", "python", "java", "javascript", "typescript", "rust", "ruby", "php",
    "kotlin", "swift", "scala", "perl", "bash", "powershell", "excel", "outlook", "gmail", "slack", "zoom",
    "aws", "azure", "gcp", "docker", "kubernetes", "postgres", "postgresql", "mysql", "sqlite", "mongodb",
    "redis", "react", "angular", "vue", "django", "flask", "fastapi", "numpy", "pandas", "pytorch",
    "tensorflow", "git", "github", "gitlab", "npm", "pip", "conda", "vscode", "vim", "emacs", "spotify",
    "netflix", "whatsapp", "telegram", "instagram", "facebook", "tiktok", "youtube", "paypal", "venmo",
})  # fmt: skip

_QUOTED = re.compile(r"\"([^\"]{1,80})\"|“([^”]{1,80})”|`([^`]{1,80})`|(?<!\w)'([^']{1,80})'(?!\w)")
_URL_OR_MAIL = re.compile(r"\b(?:https?://\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+)")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*(?:[-./:][A-Za-z0-9_]+)*")
_NUMERIC_DATE = re.compile(r"\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_NUMBER = re.compile(r"^\d+(?:,\d{3})*(?:\.\d+)?$")
_EXPRESSION = re.compile(r"\d(?:\s*[-+*/×x^÷]\s*\d[\d.,]*)+")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n\s*)[\"'(“]*([A-Za-z][\w'-]*)")
_DIRECTION = re.compile(r"\b([a-z][\w$€£-]*)\s+(?:to|into|->|→)\s+(?:(?:a|an|the|my|your|our)\s+)?([a-z][\w$€£-]*)")
_COMPARISON = re.compile(  # "is a dolphin bigger than a shark": (dolphin, shark)
    r"\b([a-z][\w-]*)\s+(?:is\s+|are\s+)?(?:[a-z]+er|more\s+[a-z]+|less\s+[a-z]+)\s+than\s+(?:(?:a|an|the)\s+)?([a-z][\w-]*)"
)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# "one" as a pronoun ("how does one", "which one", "one of"), not a count
_PRONOUN_ONE = re.compile(
    r"\b(?:does|do|can|could|should|would|will|must|may|might|which|this|that|the|each|any|every|no|some)\s+one\b"
    r"|\bone\s+(?:of|another)\b"
)
_SPAN = re.compile(r"\b(?:in|within|for|every|per|each|a|an)\s+(?:an?\s+)?(second|minute|hour|day|week|month|year)s?\b")
_FREQUENCY = {
    "hourly": "hour", "daily": "day", "nightly": "day", "weekly": "week", "biweekly": "week2", "monthly": "month",
    "quarterly": "quarter", "yearly": "year", "annual": "year", "annually": "year",
}  # fmt: skip


def _normal_number(token: str) -> str:
    whole, _, fraction = token.replace(",", "").partition(".")
    fraction = fraction.rstrip("0")
    return (whole.lstrip("0") or "0") + (f".{fraction}" if fraction else "")


def _is_identifier(token: str) -> bool:
    has_digit = any(ch.isdigit() for ch in token)
    has_alpha = any(ch.isalpha() for ch in token)
    if has_digit and has_alpha:
        return True  # INV-2041, gpt-4o, Q3, v2.1, 3rd, 10am
    if not has_alpha:
        return has_digit  # 3.11.7, 192.168.0.1, 12:30
    if "_" in token or "/" in token or ":" in token:
        return True  # user_id, src/app.py, std::vector
    if "." in token:
        return True  # config.yaml, os.path.join
    return re.match(r"[a-z]+[A-Z]", token) is not None  # getUserName, iPhone (OpenAI, VPNs: entities)


def query_facts(text: str) -> QueryFacts:
    """Extract the facts the guards compare from one query text (see the module doc)."""
    lowered = text.lower().replace("’", "'")
    words = frozenset(_WORD.findall(lowered))
    spans = set(_URL_OR_MAIL.findall(text))
    ids: set[str] = {span.lower().rstrip(".,;:!?") for span in spans}
    numbers: set[str] = set()
    numeric_dates = {m.group(0) for m in _NUMERIC_DATE.finditer(text)}
    stripped = _THOUSANDS.sub("", _NUMERIC_DATE.sub(" ", _URL_OR_MAIL.sub(" ", text)))
    for match in _TOKEN.finditer(stripped):
        token = match.group(0).rstrip(".:/-")
        if _NUMBER.match(token):
            numbers.add(_normal_number(token))
        elif _is_identifier(token):
            ordinal = re.fullmatch(r"(\d+)(?:st|nd|rd|th)", token.lower())
            if ordinal:
                numbers.add(_normal_number(ordinal.group(1)))
            else:
                ids.add(token.lower())
    for word in words:
        if word in _NUMBER_WORDS and not (word == "one" and _PRONOUN_ONE.search(lowered)):
            numbers.add(_NUMBER_WORDS[word])
    operators = "".join(
        sorted(
            re.sub(r"[\d.,\s]", "", expr).replace("×", "*").replace("x", "*").replace("÷", "/")
            for expr in _EXPRESSION.findall(stripped)
        )
    )
    dates = {_MONTHS[w] for w in words if w in _MONTHS and not (w == "may" and _may_is_verb(lowered))}
    dates.update(" ".join(m.groups()) for m in _RELATIVE.finditer(lowered))
    dates.update(numeric_dates)
    dates.update(m.group(1) for m in _SPAN.finditer(lowered))
    dates.update(_FREQUENCY[w] for w in words if w in _FREQUENCY)
    plain = {w.replace("'", "") for w in words} | {w.split("'")[0] for w in words}
    negated = bool(plain & _NEGATIONS) or "n't" in lowered
    polar = frozenset(w for w in words if w in _OPPOSITE)
    return QueryFacts(
        words=frozenset(plain | words),
        numbers=frozenset(numbers),
        operators=operators,
        ids=frozenset(ids),
        dates=frozenset(dates),
        negated=negated,
        polar=polar,
        entities=_entities(text),
        directions=frozenset(_DIRECTION.findall(lowered)) | frozenset(_COMPARISON.findall(lowered)),
    )


def _may_is_verb(lowered: str) -> bool:
    """'may' as a month needs a day number or 'in/of/since/until may'; otherwise it is the verb."""
    return not re.search(r"\b(?:in|of|since|until|by|from|during|early|late|mid)\s+may\b|\bmay\s+\d", lowered)


def _entities(text: str) -> frozenset[str]:
    found: set[str] = set()
    for groups in _QUOTED.findall(text):
        quoted = next(g for g in groups if g).strip().lower()
        if quoted:
            found.add(quoted)
    starts = {m.start(1) for m in _SENTENCE_START.finditer(text)}
    for match in re.finditer(r"[A-Za-z][\w'-]*", text):
        word = match.group(0).rstrip("'-")
        word = word.removesuffix("'s")
        if len(word) < 2 and not word.isupper():
            continue
        inner_caps = any(ch.isupper() for ch in word[1:]) and any(ch.islower() for ch in word)
        all_caps = word.isupper() and len(word) >= 2
        capitalised = word[0].isupper() and match.start() not in starts
        if word == "I" or word.upper() in {"I'M", "I'D", "I'LL", "I'VE", "OK"}:
            continue
        if inner_caps or all_caps or capitalised or word.lower() in _KNOWN_NAMES:
            found.add(word.lower())
    return frozenset(found)


#: The guards that refuse a pair whenever a fact of the two texts differs at all (see ``strict_facts``).
STRICT_GUARDS = ("number", "id", "date", "negation")


def strict_facts(facts: QueryFacts) -> tuple[object, ...]:
    """The facts the ``STRICT_GUARDS`` require to be equal: numbers and operators, ids, dates, and
    whether the query is negated. Two queries whose strict facts differ are refused by one of those
    guards whatever their similarity, so a search may skip them before any other work."""
    return (facts.numbers, facts.operators, facts.ids, facts.dates, facts.negated)


def guard_conflict(a: QueryFacts, b: QueryFacts, *, guards: Iterable[str] = GUARDS) -> str | None:
    """The name of the first of ``guards`` (in ``GUARDS`` order) that refuses the pair, or None."""
    for guard in GUARDS:
        if guard in guards and _REFUSES[guard](a, b):
            return guard
    return None


def _number_differs(a: QueryFacts, b: QueryFacts) -> bool:
    return a.numbers != b.numbers or a.operators != b.operators


def _id_differs(a: QueryFacts, b: QueryFacts) -> bool:
    return a.ids != b.ids


def _date_differs(a: QueryFacts, b: QueryFacts) -> bool:
    return a.dates != b.dates


def _polarity_differs(a: QueryFacts, b: QueryFacts) -> bool:
    if a.negated != b.negated:
        return True
    only_a, only_b = a.polar - b.polar, b.polar - a.polar
    if any(_OPPOSITE[word] & only_b for word in only_a):
        return True
    return _prefix_negated(a.words - b.words, b.words - a.words) or _prefix_negated(
        b.words - a.words, a.words - b.words
    )


def _prefix_negated(words: frozenset[str], others: frozenset[str]) -> bool:
    """A word of one text appears negated by a prefix in the other (install / uninstall)."""
    return any(f"{prefix}{word}" in others for word in words if len(word) >= 4 for prefix in _NEGATING_PREFIXES)


def _entity_differs(a: QueryFacts, b: QueryFacts) -> bool:
    if not _entities_covered(a.entities, b.words) or not _entities_covered(b.entities, a.words):
        return True
    return any((y, x) in b.directions and (x, y) not in b.directions for x, y in a.directions if x != y)


_REFUSES = {
    "number": _number_differs,
    "id": _id_differs,
    "date": _date_differs,
    "negation": _polarity_differs,
    "entity": _entity_differs,
}


def _entities_covered(entities: frozenset[str], words: frozenset[str]) -> bool:
    """Every entity (a word or a quoted phrase) occurs among the other text's words."""
    for entity in entities:
        parts = _WORD.findall(entity)
        if not parts or not all(_has_word(part, words) for part in parts):
            return False
    return True


def _has_word(part: str, words: frozenset[str]) -> bool:
    """The word, ignoring apostrophes and a plural s (``APIs`` = ``API``)."""
    part = part.replace("'", "")
    singular = part[:-1] if part.endswith("s") and len(part) > 2 else part
    return part in words or singular in words or f"{part}s" in words
