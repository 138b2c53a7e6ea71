"""Provider prompt caching: where the breakpoints go, and what keeps breaking the cache.

A provider's prompt cache (Anthropic ``cache_control`` breakpoints; OpenAI and Gemini automatic
prefix caching) only serves the part of a request that is byte-identical to an earlier one, from
the first token up to the first difference. That is why context is emitted stable → volatile
(system, tool definitions, pinned facts, summary, history, new input): the leading *stable
prefix* is the same call after call. One timestamp, request id or counter inside it (``Current
time: 10:42:07``) makes every call a miss from that point on, and the whole rest of the prefix is
billed at the full input price instead of the cache-read price.

* :class:`CacheBreakerDetector` compares each call's stable prefix with the previous call's; the
  first message that differs is where the cache breaks. It explains the change with
  :func:`scan_volatile` (a timestamp, a date, a UUID, a long id, a counter) and prices it:
  ``tokens_invalidated × (input price − cache-read price)`` per call.
* :meth:`CacheBreakerDetector.scan_prefix` flags volatile-looking content on first sight,
  before there is a previous call to compare with.
* :func:`cache_breakpoint_indices` says which stable messages get an Anthropic breakpoint.

Framework-free: adapters translate their messages to ``(role, text)`` pairs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..errors import ConfigurationError
from ..prices.model_price import PER_MILLION
from ..tokens import ChatMessage, TokenCounter
from ..usage import Usage

__all__ = [
    "ANTHROPIC_MAX_BREAKPOINTS",
    "STATIC_KINDS",
    "VOLATILE_KINDS",
    "CacheBreaker",
    "CacheBreakerDetector",
    "cache_breakpoint_indices",
    "scan_volatile",
]

#: Anthropic accepts at most 4 ``cache_control`` breakpoints per request, counting those on tool
#: definitions, system blocks and messages together.
ANTHROPIC_MAX_BREAKPOINTS = 4
#: Every kind a breaker can have; ``changed_text`` means the prefix changed with no volatile pattern.
VOLATILE_KINDS = ("timestamp", "date", "uuid", "hex_id", "counter", "changed_text")
#: Kinds :meth:`CacheBreakerDetector.scan_prefix` flags on first sight. Counters are left out: on a
#: single call "Step 1:" in instructions looks exactly like a step counter.
STATIC_KINDS = ("timestamp", "date", "uuid", "hex_id")
_SAMPLE_CHARS = 60
_TTLS = ("5m", "1h")

# ---------------------------------------------------------------------------------------------
# Volatile patterns
# ---------------------------------------------------------------------------------------------
_MON = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_DOW = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
_YMD = r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
_HMS = r"(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
_ZONE = r"(?:\s*(?:Z|UTC|GMT)\b(?:[+-]\d{2}:?\d{2})?|[+-](?:[01]\d|2[0-3]):?[0-5]\d)"
_WORDS = (
    r"requests?|req|turns?|steps?|iterations?|iter|attempts?|calls?|runs?|rounds?|retry|retries|tries"
    r"|messages?|msgs?|counts?|counter|seq|sequence|visits?|tick|generation"
)

#: (kind, pattern) in priority order: a span claimed by an earlier pattern is not reported again
#: (the date inside an ISO timestamp, the epoch-looking digits inside a hex id).
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(p))
    for kind, p in (
        # ISO 8601 / RFC 3339 datetimes, str(datetime.now()), compact ISO (20250115T104207Z)
        ("timestamp", rf"\b{_YMD}[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?{_ZONE}?(?!\d)"),
        ("timestamp", r"\b\d{8}T\d{6}(?:\.\d+)?Z?\b"),
        # RFC 2822 / HTTP dates: "Wed, 15 Jan 2025 10:42:07 GMT" (weekday optional)
        (
            "timestamp",
            rf"\b(?:{_DOW},?\s+)?\d{{1,2}}\s+{_MONTH}\s+\d{{4}}\s+(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d)?(?:\s+(?:GMT|UTC|[+-]\d{{4}}))?",
        ),
        # JavaScript Date.toString() and C ctime(): "Wed Jan 15 2025 10:42:07 GMT+0000", "Wed Jan 15 10:42:07 2025"
        ("timestamp", rf"\b{_DOW}\s+{_MON}\s+\d{{1,2}}\s+\d{{4}}\s+{_HMS}(?:\s+GMT[+-]\d{{4}})?"),
        ("timestamp", rf"\b{_DOW}\s+{_MON}\s+\d{{1,2}}\s+{_HMS}\s+\d{{4}}\b"),
        # times of day: with seconds, or with am/pm, or with a zone ("10:42 UTC"); bare "3:16" is not one
        ("timestamp", rf"\b(?:[01]?\d|2[0-3]):[0-5]\d:[0-5]\d(?:[.,]\d+)?{_ZONE}?(?!\d)"),
        ("timestamp", r"\b(?:1[0-2]|0?[1-9]):[0-5]\d\s*[AaPp]\.?[Mm]\b\.?"),
        ("timestamp", r"\b(?:[01]?\d|2[0-3]):[0-5]\d\s*(?:UTC|GMT)\b"),
        # Unix epoch seconds / milliseconds between 2017 and 2033
        ("timestamp", r"\b1[5-9]\d{8}(?:\d{3}|\.\d{1,6})?\b"),
        ("uuid", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
        # long hex (hashes, trace ids, ObjectIds): letters AND digits, so neither a word nor a number
        ("hex_id", r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{16,}\b"),
        # ULIDs and prefixed random ids (req_…, toolu_…, chatcmpl-…)
        ("hex_id", r"\b(?=[0-9A-HJKMNP-TV-Z]*\d)(?=[0-9A-HJKMNP-TV-Z]*[A-Z])[0-9A-HJKMNP-TV-Z]{26}\b"),
        ("hex_id", r"\b[A-Za-z]{2,12}[_-](?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{16,}\b"),
        # dates: ISO, US/EU slashes, "January 15, 2025", "15 Jan 2025" (a bare year is prose)
        ("date", rf"\b{_YMD}\b"),
        ("date", r"\b(?:0?[1-9]|[12]\d|3[01])/(?:0?[1-9]|[12]\d|3[01])/(?:\d{4}|\d{2})\b"),
        ("date", rf"\b{_MONTH}\.?\s+(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?,?\s+\d{{4}}\b"),
        ("date", rf"\b(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?\s+{_MONTH}\.?,?\s+\d{{4}}\b"),
        # counters: a number named by a counting word ("request 4812", "turn #7", "count=3"),
        # "#123", or counted in them ("3rd attempt", "12 requests")
        ("counter", rf"(?i)\b(?:{_WORDS})\s*(?:#|no\.?|number|id|count)?\s*[:=#]?\s*\d+\b"),
        ("counter", r"(?<![\w#&])#\s?\d+\b"),
        ("counter", rf"(?i)\b\d+(?:st|nd|rd|th)?\s+(?:{_WORDS}|times)\b"),
    )
)


def _spans(text: str) -> list[tuple[str, int, int]]:
    """Volatile spans as ``(kind, start, end)``, sorted by position, never overlapping."""
    claimed: list[tuple[str, int, int]] = []
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            s, e = m.span()
            if e > s and not any(s < ce and e > cs for _, cs, ce in claimed):
                claimed.append((kind, s, e))
    claimed.sort(key=lambda t: t[1])
    return claimed


def scan_volatile(text: str) -> list[tuple[str, str]]:
    """Content of ``text`` that typically changes from one call to the next, as ``(kind, span)``.

    Kinds: ``timestamp`` (ISO 8601 / RFC 3339 / RFC 2822 datetimes, ``ctime`` and JS dates, times
    of day with seconds, am/pm or a zone, Unix epochs from 2017–2033), ``date`` (ISO, ``d/m/y``,
    ``January 15, 2025``, ``15 Jan 2025``), ``uuid``, ``hex_id`` (≥16 hex chars mixing letters and
    digits, ULIDs, prefixed random ids such as ``req_…`` / ``toolu_…``), ``counter`` (a number next
    to a counting word: request, turn, step, iteration, attempt, call, run, round, retry, message,
    count, seq…, or ``#123``).

    Tuned for few false positives in prose: bare numbers ("2 items"), years ("since 2024"), version
    strings ("3.1.12"), ratios and verses ("16:9", "John 3:16") and ordinary words are not matched.
    The price is some misses (a bare ``10:42``); :class:`CacheBreakerDetector` still reports those
    as ``changed_text`` (or ``counter`` for a number that changed) because it diffs the prefixes.
    """
    return [(kind, text[s:e]) for kind, s, e in _spans(text)]


# ---------------------------------------------------------------------------------------------
# Breakpoints
# ---------------------------------------------------------------------------------------------
def cache_breakpoint_indices(n_stable: int, max_breakpoints: int = 4) -> list[int]:
    """Indices of the stable-prefix messages that get an Anthropic ``cache_control`` breakpoint.

    Always the last stable message (``n_stable - 1``): that caches the whole prefix, tool
    definitions included (Anthropic's cache order is tools → system → messages, so a breakpoint on
    the system prompt or later covers the tools). With more breakpoints allowed, the first message
    (the system prompt, the part that changes least) and evenly spaced ones between are added, so
    when a later part of the prefix changes (a new summary every ~10 turns) the part before it is
    still read from cache: Anthropic only finds earlier cache entries at breakpoints (looking back at
    most 20 blocks from each). Sorted ascending; empty when there is no stable prefix.

    Anthropic allows 4 breakpoints per request, and breakpoints on tool definitions or already in
    the messages count toward them: pass ``max_breakpoints`` = 4 minus those. Breakpoints on a
    prefix shorter than the model's minimum cacheable length (1,024 tokens for Sonnet, more for
    Haiku / Opus) are ignored by the API, not rejected.
    """
    if isinstance(n_stable, bool) or not isinstance(n_stable, int) or n_stable < 0:
        raise ConfigurationError(f"n_stable must be an integer >= 0, got {n_stable!r}")
    if (
        isinstance(max_breakpoints, bool)
        or not isinstance(max_breakpoints, int)
        or not 0 <= max_breakpoints <= ANTHROPIC_MAX_BREAKPOINTS
    ):
        raise ConfigurationError(
            f"max_breakpoints must be an integer from 0 to {ANTHROPIC_MAX_BREAKPOINTS} "
            f"(Anthropic's limit per request), got {max_breakpoints!r}"
        )
    k = min(max_breakpoints, n_stable)
    if k == 0:
        return []
    if k == 1:
        return [n_stable - 1]
    last = n_stable - 1
    return sorted({round(i * last / (k - 1)) for i in range(k)})


# ---------------------------------------------------------------------------------------------
# Breakers
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CacheBreaker:
    """One place in the stable prefix where the prompt cache breaks (or, unobserved, likely will)."""

    #: Index of the prefix message where the break starts.
    position: int
    #: ``timestamp``, ``date``, ``uuid``, ``hex_id``, ``counter`` or ``changed_text``.
    kind: str
    #: The offending text (at most 60 characters).
    sample: str
    #: Prompt tokens from ``position`` to the end of the stable prefix that cannot be read from cache.
    tokens_invalidated: int
    #: USD lost per call: ``tokens_invalidated`` × (input price − cache-read price) / 1M; None for an
    #: unknown model.
    cost_per_call: Decimal | None
    #: A sentence for a human.
    message: str
    #: Whether the prefix was seen changing (False: a static finding of :meth:`~CacheBreakerDetector.scan_prefix`).
    observed: bool = True
    #: Whether ``tokens_invalidated`` is an exact count (False for Claude without a count client).
    exact: bool = False
    #: Every volatile ``(kind, span)`` that changed in that message (``kind``/``sample`` are the first).
    spans: tuple[tuple[str, str], ...] = ()


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SAMPLE_CHARS else text[: _SAMPLE_CHARS - 1] + "…"


def _as_messages(prefix: Iterable[Any]) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    for i, m in enumerate(prefix):
        if isinstance(m, ChatMessage):
            out.append(m)
            continue
        try:
            role, text = m
        except (TypeError, ValueError):
            raise TypeError(f"prefix[{i}] must be a (role, text) pair, got {m!r}") from None
        out.append(ChatMessage(str(role), text if isinstance(text, str) else str(text)))
    return out


def _changed_window(old: str, new: str) -> tuple[int, int, int]:
    """The region that differs, common prefix and suffix taken off: ``(start, end_in_old, end_in_new)``."""
    limit = min(len(old), len(new))
    p = 0
    while p < limit and old[p] == new[p]:
        p += 1
    s = 0
    while s < limit - p and old[-1 - s] == new[-1 - s]:
        s += 1
    return p, len(old) - s, len(new) - s


def _word(text: str, start: int, end: int) -> str:
    """``text[start:end]`` without surrounding blanks, widened to whole words at its edges."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start == end:
        return ""
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return text[start:end]


def _explain(old: str, new: str) -> tuple[list[tuple[str, str]], tuple[str, str]]:
    """Why ``old`` became ``new``: the volatile spans of ``new`` the change touches, and the
    fallback ``(kind, sample)`` when there are none (a number that changed is a ``counter``)."""
    start, old_end, new_end = _changed_window(old, new)
    if start == new_end:  # a pure deletion: spans touching the point
        changed = [(k, new[s:e]) for k, s, e in _spans(new) if s <= start <= e]
    else:
        changed = [(k, new[s:e]) for k, s, e in _spans(new) if s < new_end and e > start]
    before, after = _word(old, start, old_end), _word(new, start, new_end)
    if before.isdigit() and after.isdigit():
        return changed, ("counter", after)
    if after:
        return changed, ("changed_text", after)
    if before:
        return changed, ("changed_text", f"(removed) {before}")
    return changed, ("changed_text", "(whitespace)")


class CacheBreakerDetector:
    """Finds what breaks the prompt cache in a stable prefix, and what that costs per call.

    Call :meth:`observe` once per model call with that call's stable prefix (system, tool
    definitions rendered as text if you want them checked, pinned facts, summary) as ``(role,
    text)`` pairs in order. The first message that differs from the previous call's is where the
    cache breaks; everything from it to the end of the prefix is billed at the full input price
    again. A prefix that only grew or shrank at its end breaks nothing.

    ``cost_per_call`` values a break at ``input − cache_read`` per token (what automatic prefix
    caching loses). With Anthropic breakpoints the broken part is also *written* again on every
    call; pass ``ttl="5m"`` / ``"1h"`` to value it at ``cache_write − cache_read`` instead.

    ``counter`` defaults to ``TokenCounter.for_model(model)`` (process-wide, memoized per message);
    give one built with an ``anthropic_client`` for exact Claude counts.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        catalog: Any = None,
        counter: TokenCounter | None = None,
        ttl: str | None = None,
    ) -> None:
        if ttl is not None and ttl not in _TTLS:
            raise ConfigurationError(f"ttl must be '5m', '1h' or None, got {ttl!r}")
        if catalog is None:
            from ..prices import PriceCatalog

            catalog = PriceCatalog.default()
        if not hasattr(catalog, "get"):
            raise ConfigurationError(f"catalog must be a PriceCatalog, got {type(catalog).__name__}")
        self.model = model
        self.catalog = catalog
        self.counter = counter if counter is not None else TokenCounter.for_model(model)
        self.ttl = ttl
        self.price = catalog.get(model) if model else None
        self.calls = 0
        #: Every observed break, in call order.
        self.breakers: list[CacheBreaker] = []
        #: Static findings of the first call (:meth:`scan_prefix`), not counted in ``total_cost``.
        self.suspects: list[CacheBreaker] = []
        #: USD lost to observed breaks so far (None when the model is unknown and breaks were seen).
        self.total_cost: Decimal | None = Decimal(0)
        self._previous: list[ChatMessage] | None = None

    # --- pricing ------------------------------------------------------------------------------
    def _invalidated(self, msgs: Sequence[ChatMessage], position: int) -> tuple[int, bool]:
        whole = self.counter.count_messages(msgs)
        if position == 0:
            return whole.tokens, whole.exact
        head = self.counter.count_messages(msgs[:position])
        return max(whole.tokens - head.tokens, 0), whole.exact and head.exact

    def _cost(self, tokens: int, prefix_tokens: int) -> Decimal | None:
        if self.price is None:
            return None
        p = self.price.prices_for(Usage(cache_read=prefix_tokens))  # long-context rates above the threshold
        full = {"5m": p.cache_write_5m, "1h": p.cache_write_1h}.get(self.ttl or "", p.input)
        return tokens * (full - p.cache_read) / PER_MILLION

    def _breaker(
        self,
        msgs: Sequence[ChatMessage],
        position: int,
        spans: list[tuple[str, str]],
        fallback: tuple[str, str],
        *,
        observed: bool,
        also_changed: int = 0,
    ) -> CacheBreaker:
        tokens, exact = self._invalidated(msgs, position)
        prefix_tokens = tokens if position == 0 else self.counter.count_messages(msgs).tokens
        cost = self._cost(tokens, prefix_tokens)
        kind, sample = spans[0] if spans else fallback
        sample = _short(sample)
        role = msgs[position].role
        what = "changed text" if kind == "changed_text" else f"a {kind.replace('_', ' ')}"
        money = "unknown (model not in the price catalog)" if cost is None else f"${cost:.6f}"
        approx = "" if exact else "~"
        if observed:
            text = (
                f"Prompt cache broken at stable-prefix message {position} ({role}) by {what} {sample!r}: "
                f"{approx}{tokens:,} tokens from there on are billed at full input price, {money} per call."
            )
            if len(spans) > 1:
                text += " Also changed: " + ", ".join(f"{k} {_short(s)!r}" for k, s in spans[1:]) + "."
            if also_changed:
                text += f" {also_changed} later prefix message(s) changed too."
            text += " Move it after the stable prefix (into the new input) or make it constant."
        else:
            text = (
                f"Likely cache breaker in stable-prefix message {position} ({role}): {what} {sample!r}. "
                f"If it changes between calls, {approx}{tokens:,} tokens lose their cache discount, "
                f"{money} per call; move it after the stable prefix."
            )
        return CacheBreaker(position, kind, sample, tokens, cost, text, observed, exact, tuple(spans))

    # --- API ----------------------------------------------------------------------------------
    def scan_prefix(self, prefix: Sequence[Any], *, kinds: Sequence[str] = STATIC_KINDS) -> list[CacheBreaker]:
        """Volatile-looking content in a prefix seen once: one likely breaker per message that has any.

        Static, so it can only guess: ``kinds`` defaults to :data:`STATIC_KINDS` (counters are too
        ambiguous without a second call). A date flagged here breaks the cache once a day at most.
        """
        unknown = set(kinds) - set(VOLATILE_KINDS)
        if unknown:
            raise ConfigurationError(f"unknown volatile kind(s) {sorted(unknown)}; choose from {VOLATILE_KINDS}")
        msgs = _as_messages(prefix)
        out: list[CacheBreaker] = []
        for i, m in enumerate(msgs):
            spans = [(k, s) for k, s in scan_volatile(m.content) if k in kinds]
            if spans:
                out.append(self._breaker(msgs, i, spans, spans[0], observed=False))
        return out

    def observe(self, prefix: Sequence[Any]) -> list[CacheBreaker]:
        """Compare this call's stable prefix with the previous call's; the breaks found (0 or 1).

        On the first call there is nothing to compare with: it returns :meth:`scan_prefix`'s
        likely breakers (``observed=False``, kept in ``suspects``, not in ``total_cost``).
        """
        msgs = _as_messages(prefix)
        previous, self._previous = self._previous, msgs
        self.calls += 1
        if previous is None:
            found = self.scan_prefix(msgs)
            self.suspects.extend(found)
            return found
        position = next(
            (i for i, (a, b) in enumerate(zip(previous, msgs)) if a.role != b.role or a.content != b.content), None
        )
        if position is None:
            return []  # identical, or the prefix only grew / shrank at its end: the cache still serves it
        old, new = previous[position], msgs[position]
        also = sum(1 for a, b in zip(previous[position + 1 :], msgs[position + 1 :]) if a[:2] != b[:2])
        if old.role != new.role:
            changed: list[tuple[str, str]] = []
            fallback = ("changed_text", f"{old.role} → {new.role}")
        else:
            changed, fallback = _explain(old.content, new.content)
        breaker = self._breaker(msgs, position, changed, fallback, observed=True, also_changed=also)
        self.breakers.append(breaker)
        if breaker.cost_per_call is None:
            self.total_cost = None
        elif self.total_cost is not None:
            self.total_cost += breaker.cost_per_call
        return [breaker]

    def reset(self) -> None:
        """Forget the previous prefix (a new conversation); history and totals are kept."""
        self._previous = None
