"""The span half of the handler: keeps the span tree the event half needs, and sees failures.

``BaseSpanHandler``'s own machinery builds a pydantic span object per span and takes a lock; the
dispatcher calls ``span_enter`` / ``span_exit`` / ``span_drop`` for EVERY span of every component
(retrievers, tools, workflow steps), so they are overridden here with a dict store / pop each.
``span_drop`` carries the exception of a call that raised: it is how a failed LLM call is recorded.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Optional

from llama_index.core.instrumentation.span import BaseSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from pydantic import ConfigDict, Field

from .calls import STREAM_TYPES, CallTable, PendingCall

__all__ = ["CostSpanHandler"]


class CostSpanHandler(BaseSpanHandler[BaseSpan]):
    """Records ``span id -> parent id`` for open spans and reports dropped LLM spans."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    # ``Any`` so pydantic keeps the very objects (a Dict field would be copied on validation).
    table: Any = Field(default=None, exclude=True, repr=False)
    parents: Any = Field(default=None, exclude=True, repr=False)
    on_drop: Any = Field(default=None, exclude=True, repr=False)

    def __init__(self, table: CallTable, on_drop: Callable[[str, PendingCall, BaseException | None], None]) -> None:
        super().__init__()
        self.table = table
        self.parents = table.parents
        self.on_drop = on_drop

    @classmethod
    def class_name(cls) -> str:
        return "CostSpanHandler"

    def span_enter(
        self,
        id_: str,
        bound_args: Optional[inspect.BoundArguments] = None,
        instance: Optional[Any] = None,
        parent_id: Optional[str] = None,
        tags: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        self.parents[id_] = parent_id

    def span_exit(
        self,
        id_: str,
        bound_args: Optional[inspect.BoundArguments] = None,
        instance: Optional[Any] = None,
        result: Optional[Any] = None,
        **kwargs: Any,
    ) -> None:
        table = self.table
        table.parents.pop(id_, None)
        if table.calls and isinstance(result, STREAM_TYPES):
            table.stream_returned(id_, result)

    def span_drop(
        self,
        id_: str,
        bound_args: Optional[inspect.BoundArguments] = None,
        instance: Optional[Any] = None,
        err: Optional[BaseException] = None,
        **kwargs: Any,
    ) -> None:
        table = self.table
        table.parents.pop(id_, None)
        if table.calls:
            call = table.finish(id_)
            if call is not None:
                self.on_drop(id_, call, err)

    # BaseSpanHandler's abstract hooks; unused because the three methods above are overridden.
    def new_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
        return None
