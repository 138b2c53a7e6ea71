"""``CostTrackedEmbeddings``: any LangChain ``Embeddings``, with each embedding call priced,
recorded and charged to the budgets like a model call.

    from langchain_openai import OpenAIEmbeddings
    from agentcost_langchain import CostCallbackHandler, CostTrackedEmbeddings

    handler = CostCallbackHandler(feature="search")
    embeddings = CostTrackedEmbeddings(OpenAIEmbeddings(model="text-embedding-3-small"), handler=handler)
    vectors = embeddings.embed_documents(["refund policy", "shipping times"])

Embedding models report no callbacks in LangChain, so the wrapper does what the handler does for a
model call: it builds one core :class:`~agentcost_core.call.EmbeddingCall`, opens it under the
handler's guards (kill switch, the budget reservation of its input), records the
:class:`~agentcost_core.call.Outcome` through the handler's recorder (a ledger event of kind
``"embedding"``) and settles the reservation at that price.

Tokens: when the wrapped model talks to an OpenAI-compatible endpoint through the ``openai`` SDK
(``langchain_openai.OpenAIEmbeddings``, ``AzureOpenAIEmbeddings``), each response's
``usage.prompt_tokens`` is read at the wire (the wrapper works on its own copy of the model whose
SDK client notes the usage), so the count is exact. Any other ``Embeddings`` is counted by us with
the model family's tokenizer and the event is marked ``estimated``.

An embedding made inside a chain (a retriever's query) joins that chain's trace, step, attribution
and budget run when the handler is attached to the chain.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any
from uuid import uuid4

from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import var_child_runnable_config

from agentcost_core.attribution import read_attribution
from agentcost_core.budgets import BudgetStoreUnavailable
from agentcost_core.call import EmbeddingCall, Outcome
from agentcost_core.halts import AgentHalted
from agentcost_core.parsers import from_embeddings
from agentcost_core.usage import Usage

from .callbacks import AsyncCostCallbackHandler, CostCallbackHandler

__all__ = ["CostTrackedEmbeddings"]


class _WireUsage:
    """The usage the embedding responses of one call reported (a call may send several requests)."""

    __slots__ = ("missing", "model", "requests", "tokens")

    def __init__(self) -> None:
        self.tokens = 0
        self.model: str | None = None
        self.requests = 0
        self.missing = False  # a response without readable usage: the call is estimated instead

    def note(self, response: Any) -> None:
        self.requests += 1
        try:
            usage = from_embeddings(getattr(response, "usage", None))
        except Exception:  # noqa: BLE001 - malformed usage: counted by us instead
            usage = None
        if usage is None:
            self.missing = True
            return
        self.tokens += usage.input
        self.model = self.model or getattr(response, "model", None)

    def usage(self) -> Usage | None:
        return None if self.missing or not self.requests else Usage(input=self.tokens)


_WIRE: ContextVar[_WireUsage | None] = ContextVar("agentcost_embedding_usage", default=None)


def _note(response: Any) -> None:
    wire = _WIRE.get()
    if wire is not None:
        wire.note(response)


class _UsageNotingClient:
    """An ``openai`` SDK embeddings resource that notes each response's usage for the call in progress."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def create(self, *args: Any, **kwargs: Any) -> Any:
        response = self._inner.create(*args, **kwargs)
        _note(response)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _AsyncUsageNotingClient(_UsageNotingClient):
    async def create(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        response = await self._inner.create(*args, **kwargs)
        _note(response)
        return response


def _with_usage_noting(embeddings: Embeddings) -> Embeddings:
    """A copy of an ``openai``-SDK-backed pydantic ``Embeddings`` whose clients note usage; any other
    ``Embeddings`` unchanged (its calls are estimated). The user's object is never modified."""
    client = getattr(embeddings, "client", None)
    if client is None or not callable(getattr(client, "create", None)) or not hasattr(embeddings, "model_copy"):
        return embeddings
    if not type(client).__module__.startswith("openai."):
        return embeddings
    update: dict[str, Any] = {"client": _UsageNotingClient(client)}
    async_client = getattr(embeddings, "async_client", None)
    if async_client is not None and callable(getattr(async_client, "create", None)):
        update["async_client"] = _AsyncUsageNotingClient(async_client)
    return embeddings.model_copy(update=update)


def _model_of(embeddings: Any) -> str | None:
    for name in ("model", "model_name", "deployment"):
        value = getattr(embeddings, name, None)
        if isinstance(value, str) and value:
            return value
    return None


class CostTrackedEmbeddings(Embeddings):
    """``embeddings`` (any LangChain ``Embeddings``) with its calls recorded by ``handler``.

    ``CostTrackedEmbeddings(embeddings, handler=None, *, model=None)``: ``handler`` is the
    :class:`CostCallbackHandler` (or async one) whose ledger, budgets and guards the calls go
    through (a new ``CostCallbackHandler()`` when None); ``model`` names the model for pricing when
    the wrapped object does not say (its ``model`` / ``model_name`` field otherwise).
    """

    def __init__(
        self,
        embeddings: Embeddings,
        handler: CostCallbackHandler | AsyncCostCallbackHandler | None = None,
        *,
        model: str | None = None,
    ) -> None:
        if not isinstance(embeddings, Embeddings):
            raise TypeError(f"embeddings must be a LangChain Embeddings, got {type(embeddings).__name__}")
        if handler is None:
            handler = CostCallbackHandler()
        elif not isinstance(handler, (CostCallbackHandler, AsyncCostCallbackHandler)):
            raise TypeError(f"handler must be a CostCallbackHandler, got {type(handler).__name__}")
        if model is not None and (not isinstance(model, str) or not model):
            raise TypeError(f"model must be a non-empty model id, got {model!r}")
        #: The wrapped model as given.
        self.embeddings = embeddings
        self.handler = handler
        self.model = model or _model_of(embeddings)
        self._inner = _with_usage_noting(embeddings)

    def __repr__(self) -> str:
        return f"CostTrackedEmbeddings({self.embeddings!r}, model={self.model!r})"

    # --- LangChain's Embeddings interface ------------------------------------------------------
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._run(list(texts), lambda: self._inner.embed_documents(texts))

    def embed_query(self, text: str) -> list[float]:
        return self._run([text], lambda: self._inner.embed_query(text))

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self._arun(list(texts), lambda: self._inner.aembed_documents(texts))

    async def aembed_query(self, text: str) -> list[float]:
        return await self._arun([text], lambda: self._inner.aembed_query(text))

    # --- the call path --------------------------------------------------------------------------
    def _call(self, texts: list[str]) -> EmbeddingCall:
        """The call as a core value: its model, texts, and the enclosing LangChain run's trace, step
        and attribution when it runs inside one."""
        handler = self.handler
        config = var_child_runnable_config.get() or {}
        manager = config.get("callbacks")
        parent = getattr(manager, "parent_run_id", None)
        span = str(uuid4())
        call = EmbeddingCall(self.model, texts=texts, span_id=span, trace_id=span, framework="langchain",
                             attribution=read_attribution(config.get("metadata"), defaults=handler.recorder.defaults))  # fmt: skip
        if parent is not None:
            chain = handler._chains.get(parent)
            call.trace_id = chain[0] if chain is not None else str(parent)
            call.parent_id = str(parent)
            if chain is not None and chain[1] is not None:
                call.step = chain[1]
        return call

    def _begin(self, texts: list[str]) -> tuple[EmbeddingCall | None, Any]:
        """(the call, its run guard or None); our own error here is noted (the call still runs)."""
        try:
            call = self._call(texts)
            controls = self.handler.controls
            return call, None if controls is None else self.handler._run_guard(call.trace_id, call.attribution)
        except Exception as e:  # noqa: BLE001 - our own fault: noted, never the user's problem
            self._start_failed(e)
            return None, None

    def _start_failed(self, e: Exception) -> None:
        """Our own error before the call: noted; under hard budgets the call is refused
        (``Controls(on_internal_error=...)``), never run unreserved."""
        self.handler.recorder.note_internal_error("embedding start", e)
        if self.handler.controls is not None:
            self.handler.controls.internal_error_before_call(e)

    def _start(self, texts: list[str]) -> tuple[EmbeddingCall | None, Any, Any]:
        """(call, run guard, reservation): the kill switch, then the reservation of the input."""
        call, run = self._begin(texts)
        if run is None:
            return call, None, None
        try:
            return call, run, run.open_call(call)
        except (AgentHalted, BudgetStoreUnavailable):
            raise  # a deliberate halt: the embedding model is not called
        except Exception as e:  # noqa: BLE001 - our own fault: noted, never the user's problem
            self._start_failed(e)
            return call, None, None

    async def _astart(self, texts: list[str]) -> tuple[EmbeddingCall | None, Any, Any]:
        """:meth:`_start` for async code: a budget store's I/O runs off the event loop."""
        call, run = self._begin(texts)
        if run is None:
            return call, None, None
        try:
            return call, run, await run.aopen_call(call)
        except (AgentHalted, BudgetStoreUnavailable):
            raise
        except Exception as e:  # noqa: BLE001 - our own fault: noted, never the user's problem
            self._start_failed(e)
            return call, None, None

    def _outcome(self, call: EmbeddingCall | None, wire: _WireUsage, t0: float, error: BaseException | None) -> Outcome:
        if error is not None:
            return Outcome(error=error, latency_s=time.perf_counter() - t0)
        return Outcome(usage=wire.usage(), model=wire.model or (call.model if call else None),
                       latency_s=time.perf_counter() - t0)  # fmt: skip

    def _record(self, call: EmbeddingCall | None, outcome: Outcome) -> Any:
        """Record the outcome (the ledger event); the budget cost it settles at, or None."""
        if call is None:
            return None
        try:
            return self.handler.recorder.record_outcome(call, outcome, event_id=call.span_id)[1]
        except Exception as e:  # noqa: BLE001 - our own fault: noted, never the user's problem
            self.handler.recorder.note_internal_error("embedding record", e)
            return None

    def _run(self, texts: list[str], embed: Callable[[], Any]) -> Any:
        call, run, res = self._start(texts)
        wire = _WireUsage()
        token = _WIRE.set(wire)
        t0 = time.perf_counter()
        try:
            result = embed()
        except BaseException as e:
            outcome = self._outcome(call, wire, t0, e)
            self._finish(call, run, res, outcome)
            raise
        finally:
            _WIRE.reset(token)
        self._finish(call, run, res, self._outcome(call, wire, t0, None))
        return result

    async def _arun(self, texts: list[str], embed: Callable[[], Any]) -> Any:
        call, run, res = await self._astart(texts)
        wire = _WireUsage()
        token = _WIRE.set(wire)
        t0 = time.perf_counter()
        try:
            result = await embed()
        except BaseException as e:
            await self._afinish(call, run, res, self._outcome(call, wire, t0, e))
            raise
        finally:
            _WIRE.reset(token)
        await self._afinish(call, run, res, self._outcome(call, wire, t0, None))
        return result

    def _finish(self, call: EmbeddingCall | None, run: Any, res: Any, outcome: Outcome) -> None:
        cost = self._record(call, outcome)
        if run is not None:
            try:
                run.close_call(res, call, outcome, cost)
            except Exception as e:  # noqa: BLE001 - our own fault: noted, never the user's problem
                self.handler.recorder.note_internal_error("embedding settle", e)

    async def _afinish(self, call: EmbeddingCall | None, run: Any, res: Any, outcome: Outcome) -> None:
        cost = self._record(call, outcome)
        if run is not None:
            try:
                await run.aclose_call(res, call, outcome, cost)
            except Exception as e:  # noqa: BLE001 - our own fault: noted, never the user's problem
                self.handler.recorder.note_internal_error("embedding settle", e)
