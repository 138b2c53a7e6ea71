"""OpenAI prompt-cache writes (gpt-5.6 and later): ``input_tokens_details.cache_write_tokens`` (Responses)
and ``prompt_tokens_details.cache_write_tokens`` (Chat Completions) are billed at the model's cache-write
price, 1.25x input. Usage has no split by retention: ``prompt_cache_retention`` (``in_memory`` / ``24h``)
is a request setting the response echoes, and both retentions bill at the same price."""

from __future__ import annotations

from decimal import Decimal

import httpx
import openai
import pytest

from agentcost_core import Usage
from agentcost_core.accountant import Accountant
from agentcost_core.call import ModelCall, Outcome
from agentcost_core.parsers import from_chat_completions, from_raw, from_responses

MODEL = "gpt-5.6-sol"  # genai-prices since 2026-08-21: input $4, cache read $0.40, cache write $5, output $20 / 1M
USAGE = Usage(input=3_000, cache_read=2_000, cache_write_5m=5_000, output=100)
# 3,000 x 4 + 2,000 x 0.40 + 5,000 x 5 + 100 x 20 = 39,800 USD per 1M tokens
COST = Decimal("0.0398")


def response_payload(retention: str) -> dict:
    """A ``response`` object as the Responses API returns it for a gpt-5.6 model."""
    return {
        "id": "resp_mock01", "object": "response", "created_at": 1_764_000_000, "status": "completed",
        "model": MODEL, "output": [{
            "type": "message", "id": "msg_mock", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": "ok", "annotations": []}],
        }],
        "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
        "prompt_cache_retention": retention,
        "usage": {
            "input_tokens": 10_000, "input_tokens_details": {"cached_tokens": 2_000, "cache_write_tokens": 5_000},
            "output_tokens": 100, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 10_100,
        },
    }  # fmt: skip


def sdk_response(retention: str):  # type: ignore[no-untyped-def]
    client = openai.OpenAI(api_key="sk-test", http_client=httpx.Client(
        transport=httpx.MockTransport(lambda req: httpx.Response(200, json=response_payload(retention)))))  # fmt: skip
    return client.responses.create(model=MODEL, input="Hi.", prompt_cache_retention=retention)


def test_the_cache_write_price_is_one_rate_for_both_retentions() -> None:
    base = Accountant().price(MODEL).base
    assert (base.input, base.cache_read, base.cache_write_5m, base.output) == (
        Decimal(4), Decimal("0.4"), Decimal(5), Decimal(20),
    )  # fmt: skip
    assert base.cache_write_5m == base.input * Decimal("1.25")
    assert base.cache_write_1h == base.cache_write_5m  # no separate extended-retention rate exists


@pytest.mark.parametrize("retention", ["in_memory", "24h"])
def test_responses_cache_writes_through_the_real_sdk_cost_the_hand_computed_amount(retention: str) -> None:
    response = sdk_response(retention)
    assert response.prompt_cache_retention == retention
    assert from_responses(response.usage) == USAGE
    acc = Accountant()
    found = from_raw(response)
    usage, model = found.usage, found.model
    assert usage == USAGE and model == MODEL
    event, _ = acc.event(ModelCall(MODEL), Outcome(usage=usage, model=model, text="ok"))
    assert event.cost == COST


def test_chat_completions_cache_writes_are_the_same_bucket() -> None:
    chat = from_chat_completions({
        "prompt_tokens": 10_000, "completion_tokens": 100,
        "prompt_tokens_details": {"cached_tokens": 2_000, "cache_write_tokens": 5_000},
    })  # fmt: skip
    assert chat == USAGE
    assert Accountant().ledger_cost(chat, MODEL) == COST


def test_writes_and_reads_above_the_prompt_are_malformed() -> None:
    from agentcost_core import UsageFormatError

    bad = response_payload("24h")["usage"]
    bad["input_tokens_details"]["cache_write_tokens"] = 9_000
    with pytest.raises(UsageFormatError, match="cache-write"):
        from_responses(bad)
