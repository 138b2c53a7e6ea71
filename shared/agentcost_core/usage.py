"""Token usage in non-overlapping buckets.

Every provider reports usage differently; the parsers in :mod:`agentcost_core.parsers`
translate each format into this one shape, where no token is counted twice:

* ``input``          – input tokens billed at the full input price
* ``cache_read``     – input tokens served from the provider's prompt cache
* ``cache_write_5m`` – input tokens written to a 5-minute cache
* ``cache_write_1h`` – input tokens written to a 1-hour cache
* ``output``         – output tokens, reasoning included
* ``reasoning``      – the reasoning part of ``output`` (a visible subset, never added again)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BUCKETS", "IteratedUsage", "Usage"]

#: The billable buckets, in storage order. ``reasoning`` is not one: it is part of ``output``.
BUCKETS = ("input", "cache_read", "cache_write_5m", "cache_write_1h", "output")


@dataclass(slots=True, init=False)
class Usage:
    """Token counts of one call (or a sum of calls). Treat it as immutable: ``+`` returns a new one.

    (Not ``frozen=True``: a frozen dataclass pays ``object.__setattr__`` per field, and a Usage
    is built on every model call; for the same reason ``__init__`` is written out, with its checks
    inline instead of in a ``__post_init__`` call.)
    """

    input: int
    cache_read: int
    cache_write_5m: int
    cache_write_1h: int
    output: int
    reasoning: int

    def __init__(
        self,
        input: int = 0,
        cache_read: int = 0,
        cache_write_5m: int = 0,
        cache_write_1h: int = 0,
        output: int = 0,
        reasoning: int = 0,
    ) -> None:
        self.input = input
        self.cache_read = cache_read
        self.cache_write_5m = cache_write_5m
        self.cache_write_1h = cache_write_1h
        self.output = output
        self.reasoning = reasoning
        if input < 0 or cache_read < 0 or cache_write_5m < 0 or cache_write_1h < 0 or output < 0 or reasoning < 0:
            bad = {k: v for k, v in self.as_dict().items() if v < 0}
            raise ValueError(f"Usage buckets must be >= 0, got {bad}")
        if reasoning > output:
            raise ValueError(f"Usage.reasoning ({reasoning}) is part of output and cannot exceed it ({output})")

    @property
    def prompt_tokens(self) -> int:
        """Every input token of the request, whatever its cache status."""
        return self.input + self.cache_read + self.cache_write_5m + self.cache_write_1h

    @property
    def cache_write(self) -> int:
        return self.cache_write_5m + self.cache_write_1h

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.output

    __hash__ = None  # type: ignore[assignment]  # mutable in principle; compare with ==

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            self.input + other.input,
            self.cache_read + other.cache_read,
            self.cache_write_5m + other.cache_write_5m,
            self.cache_write_1h + other.cache_write_1h,
            self.output + other.output,
            self.reasoning + other.reasoning,
        )

    def __bool__(self) -> bool:
        return self.total > 0

    def as_dict(self) -> dict[str, int]:
        return {
            "input": self.input,
            "cache_read": self.cache_read,
            "cache_write_5m": self.cache_write_5m,
            "cache_write_1h": self.cache_write_1h,
            "output": self.output,
            "reasoning": self.reasoning,
        }


class IteratedUsage(Usage):
    """The sum of a response's iterations (Anthropic ``usage.iterations``: server-side tool loops,
    context compaction, the advisor tool, a fallback model), each kept with the model that ran it
    (``None``: the response's model) so that it is priced at that model's rates."""

    __slots__ = ("iterations",)

    iterations: tuple[tuple[str | None, str | None, Usage], ...]  # (type, model, usage) per iteration

    def __init__(self, iterations: tuple[tuple[str | None, str | None, Usage], ...], reasoning: int = 0) -> None:
        total = Usage()
        for _, _, part in iterations:
            total = total + part
        super().__init__(
            total.input, total.cache_read, total.cache_write_5m, total.cache_write_1h, total.output,
            min(max(reasoning, total.reasoning), total.output),
        )  # fmt: skip
        self.iterations = iterations

    def summed(self) -> Usage:
        """The plain :class:`Usage` of the sum (what the ledger stores)."""
        return Usage(self.input, self.cache_read, self.cache_write_5m, self.cache_write_1h, self.output, self.reasoning)
