"""Token counting per model family, for estimates before a call and for context budgets.

Actual cost always uses the usage the provider reports; counting is for the cases where it
reports none (a stream without usage) and for budgets. Every count says whether it is exact.
Per-message counts are memoized, so a conversation that grows by one message costs one new
count per turn, not a recount of the history.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple, Sequence

from ..prices.model_ids import candidates, provider_hint

__all__ = ["ChatMessage", "TokenCount", "TokenCounter", "encoding_for"]

logger = logging.getLogger("agentcost.tokens")


class ChatMessage(NamedTuple):
    """A framework-free message: what adapters translate LangChain / LlamaIndex messages into."""

    role: str
    content: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class TokenCount:
    tokens: int
    exact: bool

    def __add__(self, other: TokenCount) -> TokenCount:
        return TokenCount(self.tokens + other.tokens, self.exact and other.exact)


# OpenAI chat framing (the documented cookbook rule for gpt-3.5/4/4o families):
_PER_MESSAGE = 3
_PER_NAME = 1
_REPLY_PRIMING = 3
# Claude's tokenizer yields more tokens than o200k for English text; used only without a client.
_CLAUDE_FACTOR = 1.15

_ENCODINGS: dict[str, Any] = {}
_ENC_LOCK = threading.Lock()
_warned_no_tiktoken = False
_SHARED: dict[str | None, TokenCounter] = {}


def encoding_for(model: str | None) -> str:
    """The tiktoken encoding used for ``model`` (o200k_base unless it is an older OpenAI family)."""
    if model:
        for c in candidates(model):
            if c.startswith("text-embedding-"):  # text-embedding-3-* and -ada-002
                return "cl100k_base"
            if c.startswith(("gpt-4-", "gpt-3.5")) or c in ("gpt-4", "gpt-4-turbo", "gpt-3.5-turbo"):
                if not c.startswith(("gpt-4o", "gpt-4.1", "gpt-4.5")):
                    return "cl100k_base"
    return "o200k_base"


def _encoding(name: str) -> Any:
    global _warned_no_tiktoken
    enc = _ENCODINGS.get(name)
    if enc is None:
        with _ENC_LOCK:
            enc = _ENCODINGS.get(name)
            if enc is None:
                try:
                    import tiktoken

                    enc = tiktoken.get_encoding(name)
                except Exception as e:  # not installed, or offline without TIKTOKEN_CACHE_DIR
                    if not _warned_no_tiktoken:
                        logger.warning("tiktoken encoding %s unavailable (%s); token counts are estimates", name, e)
                        _warned_no_tiktoken = True
                    enc = False
                _ENCODINGS[name] = enc
    return enc


class TokenCounter:
    """Counts tokens for one model family.

    * OpenAI families: tiktoken, exact, with chat framing.
    * Anthropic: ``client.messages.count_tokens`` when an ``anthropic`` client is given (exact,
      one API call per distinct request, cached), otherwise an estimate.
    * Others: an estimate from the o200k tokenizer.
    """

    def __init__(self, model: str | None = None, *, anthropic_client: Any = None, memo_size: int = 50_000) -> None:
        if isinstance(memo_size, bool) or not isinstance(memo_size, int) or memo_size < 1:
            raise ValueError(f"memo_size must be a positive int, got {memo_size!r}")
        self.model = model
        self.family = provider_hint(model or "") or "other"
        self.encoding_name = encoding_for(model)
        self.anthropic_client = anthropic_client
        # Memos keyed by a digest of the message (its hash), never by the text: an entry is two
        # ints (~100 bytes) whatever the message's length, so ``memo_size`` entries bound the
        # memo's bytes (~5 MB at the default) and no prompt is kept alive by it.
        self._memo: dict[int, int] = {}
        self._memo_size = memo_size
        self._request_memo: dict[int, int] = {}
        self.exact = self.family == "openai" and bool(_encoding(self.encoding_name))

    @classmethod
    def for_model(cls, model: str | None) -> TokenCounter:
        """A process-wide counter per model id, so every handler shares one memo."""
        counter = _SHARED.get(model)
        if counter is None:
            counter = _SHARED.setdefault(model, cls(model))
        return counter

    # --- text ---------------------------------------------------------------------------
    def _raw(self, text: str) -> int:
        enc = _encoding(self.encoding_name)
        if not enc:
            return math.ceil(len(text) / 4)
        return len(enc.encode_ordinary(text))  # special-token text counted as ordinary text

    def count_text(self, text: str) -> TokenCount:
        n = self._raw(text)
        if self.family == "anthropic":
            return TokenCount(math.ceil(n * _CLAUDE_FACTOR), False)
        return TokenCount(n, self.exact)

    # --- messages -----------------------------------------------------------------------
    def message_tokens(self, m: ChatMessage) -> int:
        """Tokens of one message including its framing (memoized by the message's digest)."""
        key = hash(m)  # a tuple's hash: its strings' hashes, computed once per string object
        n = self._memo.get(key)
        return self._count_message(m, key) if n is None else n

    def _count_message(self, m: ChatMessage, key: int) -> int:
        n = _PER_MESSAGE + self._raw(m.content) + self._raw(m.role)
        if m.name:
            n += _PER_NAME + self._raw(m.name)
        if self.family == "anthropic":
            n = math.ceil(n * _CLAUDE_FACTOR)
        if len(self._memo) >= self._memo_size:
            self._memo.clear()
        self._memo[key] = n
        return n

    def count_messages(self, messages: Iterable[ChatMessage]) -> TokenCount:
        msgs = tuple(m if isinstance(m, ChatMessage) else ChatMessage(*m) for m in messages)
        if self.family == "anthropic" and self.anthropic_client is not None:
            exact = self._anthropic_count(msgs)
            if exact is not None:
                return TokenCount(exact, True)
        memo = self._memo
        total = _REPLY_PRIMING
        for m in msgs:  # memo hits inline: a long conversation is mostly hits
            key = hash(m)
            n = memo.get(key)
            total += self._count_message(m, key) if n is None else n
        return TokenCount(total, self.exact)

    def _anthropic_count(self, msgs: Sequence[ChatMessage]) -> int | None:
        key = hash(tuple(msgs))
        cached = self._request_memo.get(key)
        if cached is not None:
            return cached
        system = "\n\n".join(m.content for m in msgs if m.role == "system")
        turns = [
            {"role": "assistant" if m.role in ("assistant", "ai") else "user", "content": m.content or " "}
            for m in msgs
            if m.role != "system"
        ] or [{"role": "user", "content": " "}]
        try:
            kwargs: dict[str, Any] = {"model": self.model, "messages": turns}
            if system:
                kwargs["system"] = system
            n = int(self.anthropic_client.messages.count_tokens(**kwargs).input_tokens)
        except Exception as e:
            logger.warning("anthropic count_tokens failed (%s); falling back to an estimate", e)
            return None
        if len(self._request_memo) > 1_000:
            self._request_memo.clear()
        self._request_memo[key] = n
        return n
