"""Drivers of the contract suite: one per adapter, the same small interface on both.

Each driver drives its adapter through the adapter's REAL path (LangChain: ``CostCallbackHandler``
on a chat model, ``guard(create_agent(...))``, ``TieredMemory.fit``, ``ModelRouter``; LlamaIndex:
``instrument()`` on a LLM, ``guard(FunctionAgent(...))``, ``TieredMemory`` put/get, ``RouterLLM``)
and exposes the same small interface, so every contract test asserts the same outcome on both.

Usage is given neutrally as ``{"input": n, "output": m, "cached": k}`` (OpenAI semantics: ``input``
includes ``cached``) and each driver hands it to its framework in that framework's own shape.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any, Sequence

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

from agentcost_core import Ledger  # noqa: E402

MILLION = Decimal(1_000_000)
MALFORMED = {
    "a list": [1, 2, 3],
    "a string": "12 tokens",
    "a digit-like count": {"prompt_tokens": "²", "completion_tokens": 5},
    "only a total": {"total_tokens": 30},
    "beyond 64 bits": {"prompt_tokens": 2**63, "completion_tokens": 5},
}


def catalog_price(model: str, bucket: str) -> Decimal:
    """USD per 1M tokens of ``bucket`` for ``model``, straight from the packaged price data."""
    from agentcost_core import PriceCatalog

    return Decimal(PriceCatalog.default().get(model).as_entry()[bucket])


def tier_multiplier(model: str, tier: str) -> Decimal:
    """The tier's input price over the standard one (OpenAI's tiers scale every bucket alike)."""
    from agentcost_core import PriceCatalog

    entry = PriceCatalog.default().get(model).as_entry()
    return Decimal(entry["service_tiers"][tier]["input"]) / Decimal(entry["input"])


def hand_cost(model: str, *, input: int, output: int, cached: int = 0) -> Decimal:
    """sum(tokens x price) / 1M, the cached part of the input at the cache-read price."""
    return (
        Decimal(input - cached) * catalog_price(model, "input")
        + Decimal(cached) * catalog_price(model, "cache_read")
        + Decimal(output) * catalog_price(model, "output")
    ) / MILLION


def llm_events(events: Sequence[Any]) -> list[Any]:
    return [e for e in events if e.kind == "llm"]


# --- LangChain ----------------------------------------------------------------------------------
class LangChainDriver:
    name = "langchain"

    def call(
        self,
        *,
        usage: Any,
        model: str = "gpt-4o",
        text: str = "Paris.",
        attribution: dict[str, Any] | None = None,
        service_tier: str | None = None,
        raw_usage: bool = False,
    ) -> Any:
        """One model call through ``CostCallbackHandler``; the single event it recorded."""
        from agentcost_langchain import CostCallbackHandler

        h = CostCallbackHandler(Ledger("memory://", sync=True))
        llm = _usage_chat_model(usage=usage, served=model, text=text, service_tier=service_tier, raw_usage=raw_usage)
        out = llm.invoke("What is the capital of France?", {"callbacks": [h], "metadata": dict(attribution or {})})
        assert out.content == text
        [event] = llm_events(h.events)
        assert h.internal_errors == 0
        return event

    def same_call_twice_with_llm_cache(
        self, *, usage: dict[str, int], model: str = "gpt-4o", budgets: Any = None, user_id: str | None = None
    ) -> list[Any]:
        """The same call twice on a model with an LLM cache (the second one a hit); the two events."""
        from langchain_core.caches import InMemoryCache

        from agentcost_langchain import CostCallbackHandler

        h = CostCallbackHandler(Ledger("memory://", sync=True), budgets=budgets, user_id=user_id)
        llm = _usage_chat_model(usage=usage, served=model, text="Paris.", cache=InMemoryCache())
        for _ in range(2):
            llm.invoke("What is the capital of France?", {"callbacks": [h]})
        return llm_events(h.events)

    def guarded_run(
        self,
        *,
        budgets: Any,
        user_id: str,
        turns: int,
        model: str,
        max_tokens: int,
        service_tier: str | None = None,
        malformed_usage: Any = None,
    ) -> tuple[Any, list[Any]]:
        """A looping tool-calling agent under ``guard(create_agent(...), budgets=...)``
        (``malformed_usage``: what every reply reports as its usage instead of the real one)."""
        from langchain.agents import create_agent
        from langchain_core.messages import AIMessage, HumanMessage
        from langchain_core.tools import tool

        from agentcost_langchain import guard

        @tool
        def lookup(q: str) -> str:
            """Look something up."""
            return f"result for {q}"

        script: list[Any] = [
            AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"q": f"query {i}"}, "id": f"c{i}"}])
            for i in range(turns)
        ]
        kw: dict[str, Any] = {"service_tier": service_tier} if service_tier else {}
        if malformed_usage is not None:
            kw["malformed_usage"] = malformed_usage
        llm = _tiered_scripted_model(script=[*script, "Done."], model=model, max_tokens=max_tokens, **kw)
        agent = create_agent(llm, tools=[lookup])
        ledger = Ledger("memory://", sync=True)
        result = guard(agent, budgets=budgets, ledger=ledger, user_id=user_id).invoke(
            {"messages": [HumanMessage("Look everything up.")]}, {"recursion_limit": 4 * turns + 10}
        )
        return result, llm_events(ledger.events())

    def fit_memory(
        self, *, max_tokens: int, system: str, history: list[tuple[str, str]], current: str, model: str = "gpt-4o"
    ) -> tuple[list[tuple[str, str]], int]:
        """``TieredMemory.fit`` over system + history + the current input; the view and its tokens."""
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        from agentcost_core.tokens import TokenCounter
        from agentcost_langchain import TieredMemory
        from agentcost_langchain.messages import to_chat_messages

        kinds = {"user": HumanMessage, "assistant": AIMessage}
        msgs = [SystemMessage(system), *(kinds[r](t) for r, t in history), HumanMessage(current)]
        view = TieredMemory(max_tokens, model=model, recent_turns=2).fit(msgs)
        tokens = TokenCounter.for_model(model).count_messages(to_chat_messages(view)).tokens
        roles = {"system": "system", "human": "user", "ai": "assistant"}
        return [
            (roles[m.type], m.content if isinstance(m.content, str) else json.dumps(m.content)) for m in view
        ], tokens

    def route(self, *, policy: Any, prompt: str, metadata: dict[str, Any] | None = None) -> Any:
        """One call through ``ModelRouter`` with tiers nano / frontier (``metadata``: the run's); its llm event."""
        from agentcost_langchain import CostCallbackHandler, ModelRouter
        from agentcost_langchain.testing import ScriptedChatModel

        tiers = {"nano": ScriptedChatModel(script=["nano answer"], model=NANO),
                 "frontier": ScriptedChatModel(script=["frontier answer"], model=FRONTIER)}  # fmt: skip
        h = CostCallbackHandler(Ledger("memory://", sync=True))
        out = ModelRouter(tiers, policy).invoke(prompt, {"callbacks": [h], "metadata": dict(metadata or {})})
        [event] = llm_events(h.events)
        assert out.content == f"{event.tier} answer"
        return event


NANO, FRONTIER = "gpt-4.1-nano", "gpt-4.1"


def _usage_chat_model(
    *, usage: Any, served: str, text: str, service_tier: str | None = None, raw_usage: bool = False, cache: Any = None
) -> Any:
    """A chat model whose reply carries exactly the given usage, in LangChain's ``usage_metadata``
    shape (``raw_usage``: put ``usage`` there as it is, malformed or not)."""
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class UsageChatModel(BaseChatModel):
        usage: Any = None
        served: str = "gpt-4o"
        text: str = ""
        service_tier: str | None = None
        raw_usage: bool = False

        @property
        def _llm_type(self) -> str:
            return "usage-fake"

        @property
        def _identifying_params(self) -> dict[str, Any]:
            params: dict[str, Any] = {"model": self.served}
            if self.service_tier:
                params["service_tier"] = self.service_tier
            return params

        def _get_ls_params(self, stop: Any = None, **kwargs: Any) -> Any:
            return {"ls_provider": "openai", "ls_model_name": self.served, "ls_model_type": "chat"}

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
            meta: dict[str, Any] = {"model_name": self.served}
            if self.service_tier:
                meta["service_tier"] = self.service_tier
            message = AIMessage(content=self.text, response_metadata=meta)
            if self.raw_usage:
                message.usage_metadata = self.usage  # whatever the provider sent, unvalidated
            elif self.usage is not None:
                u = self.usage
                md: dict[str, Any] = {"input_tokens": u["input"], "output_tokens": u["output"],
                                      "total_tokens": u["input"] + u["output"]}  # fmt: skip
                if u.get("cached"):
                    md["input_token_details"] = {"cache_read": u["cached"]}
                message.usage_metadata = md  # type: ignore[assignment]
            return ChatResult(generations=[ChatGeneration(message=message)])

    return UsageChatModel(
        usage=usage, served=served, text=text, service_tier=service_tier, raw_usage=raw_usage, cache=cache
    )


def _tiered_scripted_model(**kw: Any) -> Any:
    """``ScriptedChatModel`` with a ``service_tier`` setting, echoed in the response like OpenAI does."""
    from agentcost_langchain.testing import ScriptedChatModel

    class TieredScripted(ScriptedChatModel):
        service_tier: str | None = None
        malformed_usage: Any = None

        @property
        def _identifying_params(self) -> dict[str, Any]:
            params = dict(super()._identifying_params)
            if self.service_tier:
                params["service_tier"] = self.service_tier
            return params

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **k: Any) -> Any:
            result = super()._generate(messages, stop, run_manager, **k)
            if self.malformed_usage is not None:
                result.generations[0].message.usage_metadata = self.malformed_usage
            if self.service_tier:
                message = result.generations[0].message
                message.response_metadata = {**message.response_metadata, "service_tier": self.service_tier}
            return result

    return TieredScripted(**kw)


# --- LlamaIndex ---------------------------------------------------------------------------------
class LlamaIndexDriver:
    name = "llamaindex"

    def call(
        self,
        *,
        usage: Any,
        model: str = "gpt-4o",
        text: str = "Paris.",
        attribution: dict[str, Any] | None = None,
        service_tier: str | None = None,
        raw_usage: bool = False,
    ) -> Any:
        """One model call seen by ``instrument()``; the single event it recorded."""
        from llama_index.core.base.llms.types import ChatMessage, MessageRole
        from llama_index.core.instrumentation.dispatcher import instrument_tags

        from agentcost_llamaindex import instrument

        if raw_usage:
            payload: Any = usage
        elif usage is None:
            payload = None
        else:
            payload = {
                "prompt_tokens": usage["input"], "completion_tokens": usage["output"],
                "total_tokens": usage["input"] + usage["output"],
                "prompt_tokens_details": {"cached_tokens": usage.get("cached", 0)},
                "completion_tokens_details": {"reasoning_tokens": 0},
            }  # fmt: skip
        raw: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion", "model": model}
        if payload is not None:
            raw["usage"] = payload
        if service_tier:
            raw["service_tier"] = service_tier
        llm = _raw_chat_llm(model=model, text=text, raw=raw)
        with instrument(Ledger("memory://", sync=True)) as h, instrument_tags(dict(attribution or {})):
            out = llm.chat([ChatMessage(role=MessageRole.USER, content="What is the capital of France?")])
        assert out.message.content == text
        [event] = llm_events(h.events)
        assert h.internal_errors == 0
        return event

    def same_call_twice_with_llm_cache(self, **kw: Any) -> list[Any]:
        pytest.skip("LlamaIndex has no LLM cache: a cache hit cannot happen on this adapter")

    def guarded_run(
        self,
        *,
        budgets: Any,
        user_id: str,
        turns: int,
        model: str,
        max_tokens: int,
        service_tier: str | None = None,
        malformed_usage: Any = None,
    ) -> tuple[Any, list[Any]]:
        """A looping tool-calling agent under ``guard(FunctionAgent(...), budgets=...)``
        (``malformed_usage``: what every reply reports as its usage instead of the real one)."""
        from llama_index.core.agent.workflow import FunctionAgent

        from agentcost_llamaindex import guard

        def lookup(q: str) -> str:
            """Look something up."""
            return f"result for {q}"

        script: list[Any] = [{"tool": "lookup", "args": {"q": f"query {i}"}} for i in range(turns)]
        extra = {"service_tier": service_tier} if service_tier else {}
        llm = _malformed_scripted_llm(malformed_usage)(
            script=[*script, "Done."], model=model, max_tokens=max_tokens, additional_kwargs=extra
        )
        agent = FunctionAgent(tools=[lookup], llm=llm, streaming=False)
        ledger = Ledger("memory://", sync=True)
        result = asyncio.run(
            guard(agent, budgets=budgets, ledger=ledger, user_id=user_id).run(
                "Look everything up.", max_iterations=4 * turns + 10
            )
        )
        return result, llm_events(ledger.events())

    def fit_memory(
        self, *, max_tokens: int, system: str, history: list[tuple[str, str]], current: str, model: str = "gpt-4o"
    ) -> tuple[list[tuple[str, str]], int]:
        """``TieredMemory`` put / get (the current input put last, as an agent does)."""
        from llama_index.core.base.llms.types import ChatMessage, MessageRole

        from agentcost_core.tokens import TokenCounter
        from agentcost_llamaindex import TieredMemory, to_core_messages

        roles = {"system": MessageRole.SYSTEM, "user": MessageRole.USER, "assistant": MessageRole.ASSISTANT}
        memory = TieredMemory(max_tokens, model=model, recent_turns=2)
        memory.put(ChatMessage(role=MessageRole.SYSTEM, content=system))
        for role, text in history:
            memory.put(ChatMessage(role=roles[role], content=text))
        memory.put(ChatMessage(role=MessageRole.USER, content=current))
        view = memory.get(input=current)
        tokens = TokenCounter.for_model(model).count_messages(to_core_messages(view)).tokens
        return [(m.role.value, m.content or "") for m in view], tokens

    def route(self, *, policy: Any, prompt: str, metadata: dict[str, Any] | None = None) -> Any:
        """One call through ``RouterLLM`` with tiers nano / frontier (``metadata``: the run's
        ``instrument_tags``); its llm event."""
        from llama_index.core.base.llms.types import ChatMessage, MessageRole
        from llama_index.core.instrumentation.dispatcher import instrument_tags

        from agentcost_llamaindex import RouterLLM, instrument
        from agentcost_llamaindex.testing import ScriptedLLM

        tiers = {"nano": ScriptedLLM(script=["nano answer"], model=NANO),
                 "frontier": ScriptedLLM(script=["frontier answer"], model=FRONTIER)}  # fmt: skip
        with instrument(Ledger("memory://", sync=True)) as h, instrument_tags(dict(metadata or {})):
            out = RouterLLM(tiers, policy).chat([ChatMessage(role=MessageRole.USER, content=prompt)])
        [event] = llm_events(h.events)
        assert out.message.content == f"{event.tier} answer"
        return event


def _malformed_scripted_llm(usage: Any) -> Any:
    """``ScriptedLLM``, or a subclass whose responses report ``usage`` instead of the real usage."""
    from agentcost_llamaindex.testing import ScriptedLLM

    if usage is None:
        return ScriptedLLM

    class MalformedUsageLLM(ScriptedLLM):
        def _reply(self, messages: Any) -> Any:
            message, raw = super()._reply(messages)
            return message, {**raw, "usage": usage}

    return MalformedUsageLLM


def _raw_chat_llm(*, model: str, text: str, raw: Any) -> Any:
    """A LlamaIndex chat LLM whose ``ChatResponse.raw`` is the given provider payload."""
    from llama_index.core.base.llms.types import ChatMessage, ChatResponse, LLMMetadata, MessageRole
    from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
    from llama_index.core.llms.custom import CustomLLM

    class RawLLM(CustomLLM):
        model: str = "gpt-4o"
        text: str = ""
        raw: Any = None

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name=self.model, is_chat_model=True)

        @llm_chat_callback()
        def chat(self, messages: Any, **kwargs: Any) -> ChatResponse:
            return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=self.text), raw=self.raw)

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            raise NotImplementedError

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            raise NotImplementedError

    return RawLLM(model=model, text=text, raw=raw)


DRIVERS = {"langchain": LangChainDriver, "llamaindex": LlamaIndexDriver}
