"""One model call as two plain values: what goes in (:class:`ModelCall`, or :class:`EmbeddingCall`
for an embedding request) and what came out (:class:`Outcome`). Each adapter builds them once at
its edge from framework objects; everything after that (guards, budgets, pricing, the ledger) reads
only these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

from .attribution import NO_ATTRIBUTION, Attribution
from .privacy import describe_error
from .tokens import ChatMessage, TokenCount, TokenCounter
from .usage import Usage

__all__ = ["CHOICE_SETTINGS", "EmbeddingCall", "ModelCall", "Outcome", "choices_of", "describe_error"]

#: Request settings that ask a provider for several completions in one call, each billed as output:
#: OpenAI's ``n`` (and ``best_of`` for completions, which bills every candidate it generates) and
#: Gemini's ``candidate_count``.
CHOICE_SETTINGS = ("n", "best_of", "candidate_count")


def choices_of(*settings: Any) -> int:
    """How many completions a request asks for: 1 unless a setting of :data:`CHOICE_SETTINGS` in one of
    ``settings`` (mappings or objects: the call's own settings, the model's) says more; the largest
    one wins (a budget reserves for the most the call can be billed)."""
    most = 1
    for source in settings:
        if source is None:
            continue
        for name in CHOICE_SETTINGS:
            value = source.get(name) if isinstance(source, dict) else getattr(source, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > most:
                most = value
    return most


@dataclass(slots=True)
class ModelCall:
    """What a model call sends, as core items.

    ``tools`` is the tool schemas as JSON text (billed as input); ``images`` counts the image parts
    of the input (each billed as tokens); ``max_tokens`` is the request's output cap, if it sets
    one; ``service_tier`` the tier it asks for (``None`` for the default tier); ``choices`` how many
    completions it asks for (OpenAI ``n``: each can produce up to ``max_tokens`` of billed output).
    """

    #: The ledger event's kind (``CostEvent.kind``).
    kind: ClassVar[str] = "llm"

    model: str | None
    messages: Sequence[ChatMessage] = ()
    tools: str | None = None
    images: int = 0
    max_tokens: int | None = None
    service_tier: str | None = None
    choices: int = 1
    attribution: Attribution = NO_ATTRIBUTION
    trace_id: Any = None
    span_id: Any = None
    parent_id: Any = None
    step: str | None = None
    provider: str | None = None
    framework: str | None = None
    _input: TokenCount | None = field(default=None, repr=False, compare=False)

    def input_tokens(self) -> TokenCount:
        """The prompt's tokens, counted with the model family's tokenizer (once per call; per-message
        counts are memoized across calls). Tool schemas and images make the count an estimate."""
        if self._input is None:
            counter = TokenCounter.for_model(self.model)
            count = counter.count_messages(list(self.messages))
            if self.tools:
                count = count + TokenCount(counter.count_text(self.tools).tokens, False)
            self._input = count
        return self._input


@dataclass(slots=True)
class EmbeddingCall(ModelCall):
    """An embedding request: ``texts`` are billed as input, there is no output (``max_tokens`` is 0,
    so a budget reserves the input only). It takes the same path as a model call (guards, budgets,
    the accountant, the ledger) and is recorded as an event of kind ``"embedding"``."""

    kind: ClassVar[str] = "embedding"

    texts: Sequence[str] = ()
    max_tokens: int | None = 0

    def input_tokens(self) -> TokenCount:
        """The texts' tokens, counted with the model family's tokenizer (no chat framing)."""
        if self._input is None:
            counter = TokenCounter.for_model(self.model)
            count = TokenCount(0, counter.exact)
            for text in self.texts:
                count = count + counter.count_text(text)
            self._input = count
        return self._input


@dataclass(slots=True)
class Outcome:
    """What came back: the provider's usage (``None`` when it reported none or it could not be
    read: ``usage_error`` says why), the model it served, the tier, the output, the server-side tool
    requests, and whether it was an LLM-cache hit or an error."""

    usage: Usage | None = None
    model: str | None = None
    service_tier: str | None = None
    text: str = ""
    tool_calls: tuple[tuple[str, Any], ...] = ()
    cache_hit: bool = False
    error: BaseException | str | None = None  # described for the ledger by privacy.describe_error
    usage_error: str | None = None
    usage_provider: str | None = None  # the provider whose usage format the response had
    latency_s: float | None = None
    first_chunk_s: float | None = None  # a stream's time to its first chunk (measured for exporters)
    extra: dict[str, Any] | None = None
    tier: str | None = None  # the routing tier that served the call
    prompt: Any = None  # prompt logging's PromptRecord of this call (set by the recorder when it is on)
    #: Server-side tool requests the provider bills per request on top of the tokens, by tool
    #: (``{"web_search": 3}``); the accountant prices those the price data has a fee for.
    server_tools: dict[str, int] | None = None
