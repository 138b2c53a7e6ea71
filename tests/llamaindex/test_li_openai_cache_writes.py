"""LlamaIndex: the real ``OpenAIResponses`` LLM (llama-index-llms-openai) over the real openai SDK and a
mock wire; a gpt-5.6 response's cache writes (``cache_write_tokens``) are billed at the cache-write
price, whatever the prompt-cache retention."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

pytest.importorskip("llama_index.core")
pytest.importorskip("llama_index.llms.openai")

from li_fakes import user
from llama_index.llms.openai import OpenAIResponses

from agentcost_core import Usage

MODEL = "gpt-5.6-sol"


def payload(retention: str) -> dict:
    return {
        "id": "resp_mock01", "object": "response", "created_at": 1_764_000_000, "status": "completed",
        "model": MODEL, "output": [{
            "type": "message", "id": "msg_mock", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": "ok", "annotations": []}],
        }],
        "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "prompt_cache_retention": retention,
        "usage": {
            "input_tokens": 10_000, "input_tokens_details": {"cached_tokens": 2_000, "cache_write_tokens": 5_000},
            "output_tokens": 100, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 10_100,
        },
    }  # fmt: skip


@pytest.mark.parametrize("retention", ["in_memory", "24h"])
def test_cache_writes_priced_at_the_cache_write_rate(handler, retention: str) -> None:
    wire = httpx.MockTransport(lambda req: httpx.Response(200, json=payload(retention)))
    llm = OpenAIResponses(model=MODEL, api_key="sk-test", max_retries=0, http_client=httpx.Client(transport=wire))
    assert llm.chat([user("Hi.")]).message.content == "ok"
    [event] = handler.events
    assert event.usage == Usage(input=3_000, cache_read=2_000, cache_write_5m=5_000, output=100)
    # 3,000 x $4 + 2,000 x $0.40 + 5,000 x $5 (cache write, 1.25x input) + 100 x $20 = $39,800 per 1M
    assert event.cost == Decimal("0.0398")
