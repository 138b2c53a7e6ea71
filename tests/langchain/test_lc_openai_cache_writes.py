"""LangChain: the real ``ChatOpenAI`` on the Responses API (``use_responses_api=True``, mock wire); a
gpt-5.6 response's cache writes, which langchain-openai reports as ``input_token_details.cache_creation``,
are billed at the cache-write price (1.25x input), whatever the prompt-cache retention."""

from __future__ import annotations

from decimal import Decimal

import pytest

pytest.importorskip("langchain_openai")

from langchain_providers import load_providers

from agentcost_core import Usage
from agentcost_langchain import CostCallbackHandler

P = load_providers()
MODEL = "gpt-5.6-sol"


@pytest.mark.parametrize("retention", ["in_memory", "24h"])
def test_cache_writes_priced_at_the_cache_write_rate(retention: str) -> None:
    body = P.openai_responses(MODEL, 10_000, 100, cached=2_000, text="ok")
    body["usage"]["input_tokens_details"]["cache_write_tokens"] = 5_000
    body["prompt_cache_retention"] = retention
    mock = P.MockProvider.always(body)
    handler = CostCallbackHandler("memory://")
    llm = P.chat_openai(mock, MODEL, use_responses_api=True)
    assert llm.invoke("Hi.", config={"callbacks": [handler]}).text == "ok"
    [event] = handler.events
    assert event.usage == Usage(input=3_000, cache_read=2_000, cache_write_5m=5_000, output=100)
    # 3,000 x $4 + 2,000 x $0.40 + 5,000 x $5 (cache write, 1.25x input) + 100 x $20 = $39,800 per 1M
    assert event.cost == Decimal("0.0398")
