"""agentcost for LlamaIndex: exact cost of every LLM call, from LlamaIndex's own instrumentation.

    from agentcost_llamaindex import instrument
    from llama_index.core.instrumentation.dispatcher import instrument_tags

    with instrument("sqlite:///costs.db", feature="support") as h:
        with instrument_tags({"user_id": "u1", "session_id": "s9"}):
            await agent.run("...")
    h.total_cost      # Decimal USD of the priced calls
    h.events          # one CostEvent per model call

How it works. ``instrument()`` attaches an event handler and a span handler to the ROOT dispatcher
(``llama_index.core.instrumentation.get_dispatcher()``), so every LLM in the process is seen with
no change to user code. The span handler keeps the span tree (a dict of parent ids, popped on
exit); the event handler joins each LLM call's start and end events on their span id, reads the
provider's usage from the response's ``raw`` (OpenAI objects incl. cached and reasoning tokens,
Anthropic dicts incl. 5-minute / 1-hour cache writes, Gemini; a stream's last chunk), prices it
with the core's :class:`~agentcost_core.CostRecorder` and writes a
:class:`~agentcost_core.CostEvent`. Nested LLM spans (``achat`` → ``chat`` → ``complete``) are
counted once, at the innermost call. Without reported usage the tokens are estimated (marked
``estimated=True``); a call that raises is recorded with its error and no cost.

With ``llama-index-llms-openai`` streams report usage only when asked:
``OpenAI(..., additional_kwargs={"stream_options": {"include_usage": True}})``; otherwise a
stream's tokens are estimated.

Instrumentation handlers cannot stop a run (the dispatcher swallows their exceptions), and ours
never raise into it: internal errors are logged and counted in ``h.internal_errors``.
"""

from .cached_llm import CachedLLM
from .guard import GuardedResult, guard
from .handler import CostEventHandler
from .instrument import instrument
from .memory import TieredMemory
from .messages import to_core_messages
from .router import RouterLLM
from .spans import CostSpanHandler
from .tool_cache import CachedTool

__all__ = [
    "CachedLLM",
    "CachedTool",
    "CostEventHandler",
    "CostSpanHandler",
    "GuardedResult",
    "RouterLLM",
    "TieredMemory",
    "guard",
    "instrument",
    "to_core_messages",
]
