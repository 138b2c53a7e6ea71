"""Who is asking, for a LangChain ``BaseCache``: the model run the cache lookup belongs to.

LangChain hands a cache only ``(prompt, llm_string)``. The run's attribution (the ``user_id`` that
scopes the entry, the run id that names the hit's event) is read by a small callback handler, the
*tap*, that LangChain itself adds to every callback manager through ``register_configure_hook``
(the mechanism behind ``get_usage_metadata_callback``). The hook is registered once, when the first
:class:`~agentcost_langchain.ResponseCache` is built, never at import.

The tap runs inline (no thread hop, no task copy), so ``on_chat_model_start`` sets a context
variable in the very context the model's cache lookup runs in, right before it; ``on_llm_end`` /
``on_llm_error`` clear it. Runs in other threads or tasks have their own contexts, so one run's
attribution never reaches another's lookup.

The tap also ends the coalescing flights a run owns (see ``own_flight``). A chat model updates its
cache *before* its run's end, so by then the update has shared the response and the run's end only
releases what is left. A completion model (``BaseLLM.generate``) updates its cache only *after* every
run of the batch ended (one run per prompt that missed), so the tap itself shares each completion
run's response at that run's end: it resolves the flight owned for the run's (prompt, llm_string)
with the run's generations, exactly what the update would share (which then finds nothing left).
A completion run says its model and usage in ``LLMResult.llm_output``, which its update never gets:
the run's end shares it with the flight and keeps it for that update (see ``expect_output``).
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.context import register_configure_hook

from agentcost_core.attribution import Attribution, read_attribution

__all__ = [
    "ModelRun",
    "current_run",
    "expect_output",
    "install",
    "note_handled",
    "own_flight",
    "owns",
    "owns_any",
    "take_flight",
    "take_flights",
    "take_output",
]


@dataclass(frozen=True, slots=True)
class ModelRun:
    """The model run about to look the cache up."""

    run_id: UUID
    parent_id: UUID | None
    attribution: Attribution
    model: str | None
    provider: str | None
    step: str | None
    tags: tuple[str, ...]


_current: ContextVar[ModelRun | None] = ContextVar("agentcost_cache_run", default=None)
#: The model run a CostCallbackHandler is recording (it records cache hits itself then).
_handled: ContextVar[UUID | None] = ContextVar("agentcost_cache_handled", default=None)


#: The coalescing flights this context's model run owns, by flight key: each ended by the update of its
#: key (a completion run's by the run's end), the rest at the run's end. Never changed in place (a copy
#: is set), so a task or thread started from this context never shares it.
_flights: ContextVar[dict[str, Any] | None] = ContextVar("agentcost_cache_flights", default=None)
#: The completion runs started in this context and not ended: run id -> (the (prompt, llm_string) its
#: cache was asked with, whether the run is its batch's only one). Never changed in place either.
_completions: ContextVar[dict[UUID, tuple[tuple[str, str], bool]] | None] = ContextVar(
    "agentcost_cache_completions", default=None
)
#: The cache calls that missed in this context, by (prompt, llm_string): None until a completion run of
#: that call ends, then its ``llm_output`` (model, usage), taken by the update that stores the response
#: (it gets the generations only). Never changed in place either.
_outputs: ContextVar[dict[tuple[str, str], dict[str, Any] | None] | None] = ContextVar(
    "agentcost_cache_outputs", default=None
)


def own_flight(flight: Any) -> None:
    """Remember ``flight`` as owned by this context's run: anything with a ``key``, ``resolve`` /
    ``fail`` / ``abandon``, and for a completion run's end ``call`` (its (prompt, llm_string)) and
    ``respond(generations)``."""
    _flights.set({**(_flights.get() or {}), flight.key: flight})


def owns(key: str) -> bool:
    """Whether this context's run owns the flight of ``key`` (it must never wait for it)."""
    return key in (_flights.get() or {})


def owns_any() -> bool:
    """Whether this context's run owns any flight (then it must never wait for another: that flight's
    owner may be waiting for one of its own, as two completion batches asking the same prompts)."""
    return bool(_flights.get())


def take_flight(key: str) -> Any:
    """The flight of ``key`` this context owns, now no longer remembered (None when it owns none)."""
    owned = _flights.get() or {}
    flight = owned.get(key)
    if flight is not None:
        _flights.set({k: f for k, f in owned.items() if k != key} or None)
    return flight


def _take_flight_of(call: tuple[str, str]) -> Any:
    """The flight this context owns for the cache call ``call``, now no longer remembered (or None)."""
    for key, flight in (_flights.get() or {}).items():
        if getattr(flight, "call", None) == call:
            return take_flight(key)
    return None


#: Cache calls whose output one context keeps at most: an async completion call that fails never
#: takes its entry (LangChain reports its runs from copies of the context), so the oldest go first.
MAX_EXPECTED_OUTPUTS = 64


def expect_output(call: tuple[str, str]) -> None:
    """The cache call ``call`` missed: keep its completion run's ``llm_output`` for its update."""
    outputs = {**(_outputs.get() or {}), call: None}
    while len(outputs) > MAX_EXPECTED_OUTPUTS:
        del outputs[next(iter(outputs))]
    _outputs.set(outputs)


def take_output(call: tuple[str, str]) -> dict[str, Any] | None:
    """The ``llm_output`` of the completion run of ``call`` that ended in this context (None for a chat
    run, or when none ended), now no longer remembered."""
    outputs = _outputs.get()
    if not outputs or call not in outputs:
        return None
    _outputs.set({k: v for k, v in outputs.items() if k != call} or None)
    return outputs[call]


def _keep_output(call: tuple[str, str], llm_output: dict[str, Any]) -> None:
    outputs = _outputs.get()
    if outputs and call in outputs:  # only for a call that missed here: its update takes it
        _outputs.set({**outputs, call: llm_output})


def take_flights() -> list[Any]:
    """Every flight this context still owns, now no longer remembered."""
    owned = _flights.get()
    if not owned:
        return []
    _flights.set(None)
    return list(owned.values())


def current_run() -> ModelRun | None:
    return _current.get()


def note_handled(run_id: UUID) -> None:
    """Called by the cost handlers as a model run starts: they record that run, hits included."""
    _handled.set(run_id)


def handled(run: ModelRun | None) -> bool:
    return run is not None and _handled.get() == run.run_id


def _llm_string(invocation_params: Any) -> str | None:
    """The ``llm_string`` ``BaseLLM.generate`` asks its cache with: built from the very dict it passes
    to ``on_llm_start`` as ``invocation_params``. Were the two ever to differ, no flight would match
    and the run's end would release its flights (the waiters call on their own), never share a wrong one."""
    return str(sorted(invocation_params.items())) if isinstance(invocation_params, dict) else None


def _own_output(response: Any, alone: bool) -> dict[str, Any]:
    """What a completion run's ``llm_output`` says of that run alone: a batch reports its usage once,
    for all its prompts together (LangChain gives it to the batch's first run), so a run of a batch of
    several keeps the model but no usage (unknown, never another prompt's)."""
    llm_output = getattr(response, "llm_output", None)
    if not isinstance(llm_output, dict):
        return {}
    return llm_output if alone else {k: v for k, v in llm_output.items() if k != "token_usage"}


class _Tap(BaseCallbackHandler):
    """Reads each model run's start into the context, and ends the flights the run owns at its end."""

    run_inline = True
    ignore_chain = ignore_agent = ignore_retriever = ignore_retry = ignore_custom_event = True

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                            tags: list[str] | None = None, metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:  # fmt: skip
        md = metadata or {}
        inv = kwargs.get("invocation_params") or {}
        model = inv.get("model") or inv.get("model_name") or md.get("ls_model_name")
        cache_tags = md.get("cache_tags") or ()
        _current.set(ModelRun(
            run_id=run_id, parent_id=parent_run_id, attribution=read_attribution(md),
            model=model if isinstance(model, str) else None, provider=md.get("ls_provider"),
            step=md.get("langgraph_node") or kwargs.get("name"),
            tags=(cache_tags,) if isinstance(cache_tags, str) else tuple(cache_tags),
        ))  # fmt: skip

    def on_llm_start(self, serialized: Any, prompts: list[str], *, run_id: UUID, **kwargs: Any) -> None:
        """A completion run (one prompt each): its start as a chat run's, and its cache call remembered."""
        self.on_chat_model_start(serialized, prompts, run_id=run_id, **kwargs)
        llm_string = _llm_string(kwargs.get("invocation_params"))
        if llm_string is not None and len(prompts) == 1:
            alone = kwargs.get("batch_size") in (None, 1)
            _completions.set({**(_completions.get() or {}), run_id: ((prompts[0], llm_string), alone)})

    @staticmethod
    def _end_completion(run_id: UUID) -> tuple[tuple[str, str], bool] | None:
        """(the cache call of the completion run ``run_id``, whether it was its batch's only run), None
        for a chat run; no longer remembered."""
        started = _completions.get()
        if not started or run_id not in started:
            return None
        _completions.set({k: v for k, v in started.items() if k != run_id} or None)
        return started[run_id]

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        ended = self._end_completion(run_id)
        generations = getattr(response, "generations", None)
        if ended is not None and generations:  # a completion run: its cache update comes only later
            call, alone = ended
            llm_output = _own_output(response, alone)
            _keep_output(call, llm_output)  # for that update, which gets the generations only
            flight = _take_flight_of(call)
            if flight is not None:
                flight.respond(generations[0], llm_output)  # what that update would share
        run = _current.get()
        if run is not None and run.run_id == run_id:
            _current.set(None)
            for flight in take_flights():  # a response not shared (not stored): its waiters call on their own
                flight.abandon()

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        ended = self._end_completion(run_id)
        if ended is not None:
            take_output(ended[0])  # no update follows
        run = _current.get()
        if run is not None and run.run_id == run_id:
            _current.set(None)
            for flight in take_flights():
                flight.fail(error)


_TAP = _Tap()
_tap_var: ContextVar[_Tap | None] = ContextVar("agentcost_cache_tap", default=_TAP)
_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Register the tap with LangChain (once per process)."""
    global _installed
    with _install_lock:
        if not _installed:
            register_configure_hook(_tap_var, inheritable=True)
            _installed = True
