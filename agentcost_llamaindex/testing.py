"""A scripted function-calling LLM for offline LlamaIndex demos and tests of cost controls.

``ScriptedLLM`` replays a script of replies (text, or tool calls given as
``{"tool": name, "args": {...}}``) and puts an OpenAI-shaped response in ``raw``: the model id it
claims to serve and usage with prompt tokens counted exactly from the messages (plus optional
prompt-cache reads), the way ``llama-index-llms-openai`` exposes a real ``ChatCompletion``.
Like the OpenAI integration it has ``max_tokens`` and ``additional_kwargs`` (a
``service_tier`` there is echoed in the response, as the provider does).
It works with ``FunctionAgent``, ``ReActAgent`` and ``AgentWorkflow``; streams carry usage on the
last chunk only, like the real provider.
"""

from __future__ import annotations

import json
from typing import Any, AsyncGenerator, Dict, Generator, List, Optional, Sequence

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    LLMMetadata,
    MessageRole,
    ToolCallBlock,
)
from llama_index.core.llms.callbacks import llm_chat_callback
from llama_index.core.llms.mock import MockFunctionCallingLLM
from pydantic import Field

from agentcost_core.tokens import TokenCounter

from .messages import to_core_messages

__all__ = ["ScriptedLLM"]


class ScriptedLLM(MockFunctionCallingLLM):
    """Replays ``script`` in order (cycling). ``model``: the model id it reports serving."""

    script: List[Any] = Field(default_factory=lambda: ["OK."])
    model: str = "gpt-4o-mini-2024-07-18"
    cached_share: float = 0.0
    turn: int = 0
    max_tokens: Optional[int] = None
    additional_kwargs: Dict[str, Any] = Field(default_factory=dict)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(is_function_calling_model=True, is_chat_model=True, model_name=self.model)

    def _reply(self, messages: Sequence[ChatMessage]) -> tuple[ChatMessage, dict[str, Any]]:
        item = self.script[self.turn % len(self.script)]
        self.turn += 1
        if isinstance(item, dict) and "tool" in item:
            message = ChatMessage(
                role=MessageRole.ASSISTANT,
                blocks=[ToolCallBlock(tool_call_id=f"call_{self.turn}", tool_name=item["tool"], tool_kwargs=item.get("args", {}))],
            )
            out_text = json.dumps({"name": item["tool"], "args": item.get("args", {})})
        else:
            message = ChatMessage(role=MessageRole.ASSISTANT, content=str(item))
            out_text = str(item)
        counter = TokenCounter.for_model(self.model)
        prompt = counter.count_messages(to_core_messages(messages)).tokens
        completion = max(1, counter.count_text(out_text).tokens)
        cached = int(prompt * self.cached_share) // 128 * 128
        raw = {
            "id": f"chatcmpl-scripted-{self.turn}",
            "object": "chat.completion",
            "model": self.model,
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        }
        tier = self.additional_kwargs.get("service_tier")
        if tier is not None:
            raw["service_tier"] = tier
        return message, raw

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        message, raw = self._reply(messages)
        return ChatResponse(message=message, raw=raw)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        message, raw = self._reply(messages)
        return ChatResponse(message=message, raw=raw)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        message, raw = self._reply(messages)

        def gen() -> Generator[ChatResponse, None, None]:
            yield ChatResponse(message=message, delta=message.content or "", raw=raw)

        return gen()

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        message, raw = self._reply(messages)

        async def gen() -> AsyncGenerator[ChatResponse, None]:
            text = message.content or ""
            half = len(text) // 2
            if half:
                head = ChatMessage(role=MessageRole.ASSISTANT, content=text[:half])
                yield ChatResponse(message=head, delta=text[:half], raw={"id": raw["id"], "usage": None})
            yield ChatResponse(message=message, delta=text[half:], raw=raw)

        return gen()
