"""A scripted chat model for offline demos and tests of cost controls.

``ScriptedChatModel`` replays a script of replies (text or tool calls) and reports the usage a
real provider would: input tokens counted exactly from the prompt with the model family's
tokenizer, output tokens from the reply, optional prompt-cache reads, in LangChain's
``usage_metadata`` shape, on ``invoke`` and on the last chunk of ``stream``. It supports
``bind_tools`` so it can drive ``create_agent`` and LangGraph agents.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Iterator, Sequence

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr

from agentcost_core.tokens import TokenCounter

from .messages import to_chat_messages

__all__ = ["ScriptedChatModel"]


class ScriptedChatModel(BaseChatModel):
    """Replays ``script`` (cycling); each item is a reply string or an ``AIMessage``.

    ``model``: the model id it claims to be (priced from the catalog).
    ``cached_share``: the fraction of the prompt reported as a prompt-cache read (OpenAI-style).
    ``provider``: the ``ls_provider`` it reports.
    """

    script: list[Any] = Field(default_factory=lambda: ["OK."])
    model: str = "gpt-4o-mini-2024-07-18"
    provider: str = "openai"
    cached_share: float = 0.0
    max_tokens: int | None = None  # reported in invocation params, as real chat models do
    _cursor: Any = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model}
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        return params

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        return {"ls_provider": self.provider, "ls_model_name": self.model, "ls_model_type": "chat"}

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        return self

    def _next(self) -> AIMessage:
        if self._cursor is None:
            self._cursor = itertools.cycle(self.script)
        item = next(self._cursor)
        return item.model_copy() if isinstance(item, AIMessage) else AIMessage(content=str(item))

    def _usage(self, messages: list[BaseMessage], reply: AIMessage) -> dict[str, Any]:
        counter = TokenCounter.for_model(self.model)
        prompt = counter.count_messages(to_chat_messages(messages)).tokens
        out_text = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
        if reply.tool_calls:
            out_text += json.dumps([{"name": c["name"], "args": c["args"]} for c in reply.tool_calls])
        output = max(1, counter.count_text(out_text).tokens)
        cached = int(prompt * self.cached_share) // 128 * 128  # providers cache in 128-token blocks
        usage: dict[str, Any] = {"input_tokens": prompt, "output_tokens": output, "total_tokens": prompt + output}
        if cached:
            usage["input_token_details"] = {"cache_read": cached}
        return usage

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        reply = self._next()
        reply.usage_metadata = self._usage(messages, reply)  # type: ignore[assignment]
        reply.response_metadata = {"model_name": self.model, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}
        return reply

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = self._reply(messages)
        text = reply.content if isinstance(reply.content, str) else ""
        words = text.split(" ") if text else []
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                tool_call_chunks=[
                    {"name": c["name"], "args": json.dumps(c["args"]), "id": c.get("id"), "index": i}
                    for i, c in enumerate(reply.tool_calls)
                ],
                usage_metadata=reply.usage_metadata,
                response_metadata=reply.response_metadata,
                chunk_position="last",
            )
        )
