"""Exact dollar cost of real provider-shaped calls through the REAL SDKs and LangChain integrations.

Every case runs ``ChatOpenAI`` / ``ChatAnthropic`` / ``ChatGoogleGenerativeAI`` (and the
``OpenAI`` completions LLM) over a mock HTTP transport that answers with payloads shaped like the
providers' documented responses (see ``providers.py``), and checks the one ``CostEvent`` per call:
the Usage buckets, the cost as a Decimal hand-computed from the per-million list prices in
``agentcost_core/data/prices.json`` (written out literally below), the model the provider says it
served (the dated id), and the attribution passed in run metadata.

The traps these cases pin down (DESIGN.md, "Core concepts" → Usage):
* OpenAI ``prompt_tokens`` INCLUDES ``cached_tokens``; ``completion_tokens`` includes reasoning.
* Anthropic ``input_tokens`` EXCLUDES cache reads and writes; writes split by TTL (5m / 1h).
* LangChain ``usage_metadata.input_tokens`` is the SUM; flex / priority prefix the details.
* Gemini ``promptTokenCount`` INCLUDES cached tokens; thoughts are billed as output.
* Long context (> threshold prompt tokens, cache included) reprices the WHOLE request.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

pytest.importorskip("langchain_core")

from langchain_providers import load_providers  # noqa: E402 - tests/ helper

from agentcost_core import PriceCatalog, Usage  # noqa: E402
from agentcost_langchain import AsyncCostCallbackHandler, CostCallbackHandler  # noqa: E402

P = load_providers()
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
M = Decimal(10**6)  # prices are USD per 1M tokens

META = {
    "user_id": "user-42",
    "session_id": "sess-7",
    "feature": "support-bot",
    "agent_id": "triage-agent",
    "task_id": "ticket-1001",
}


def cfg(handler, **extra_meta):
    return {"callbacks": [handler], "metadata": {**META, **extra_meta}}


def only_event(handler):
    assert len(handler.events) == 1, handler.events
    return handler.events[0]


def check(ev, *, model, usage, cost, requested=None, meta=META, tier=None):
    """The shared contract of a successful, provider-reported call."""
    assert ev.error is None
    assert ev.model == model
    if requested is not None:
        assert ev.requested_model == requested
    assert ev.usage == usage
    assert ev.cost == cost
    assert isinstance(ev.cost, Decimal)
    assert ev.priced is True
    assert ev.estimated is False
    assert ev.cache_hit is False
    assert ev.service_tier == tier
    for key, value in meta.items():
        assert getattr(ev, key) == value, key


def use_openai():
    pytest.importorskip("langchain_openai")
    pytest.importorskip("httpx")


def use_anthropic():
    pytest.importorskip("langchain_anthropic")
    pytest.importorskip("httpx2")


def use_gemini():
    pytest.importorskip("langchain_google_genai")
    pytest.importorskip("httpx")


# ==========================================================================================
# OpenAI Chat Completions
# ==========================================================================================
def test_openai_cached_tokens_are_part_of_prompt_tokens():
    use_openai()
    mock = P.MockProvider.always(P.openai_chat_completion("gpt-4o-2024-08-06", 2006, 300, cached=1920))
    llm = P.chat_openai(mock, "gpt-4o")
    h = CostCallbackHandler("memory://")

    out = llm.invoke("What is our refund policy?", config=cfg(h))

    assert out.content == "Hello from the mock."
    assert mock.calls == 1 and mock.requests[0]["model"] == "gpt-4o"
    # 2006 prompt tokens of which 1920 cached: 86 at the full input price
    expected = (Decimal(86) * Decimal("2.50") + Decimal(1920) * Decimal("1.25") + Decimal(300) * Decimal("10.00")) / M
    assert expected == Decimal("0.005615")
    check(
        only_event(h),
        model="gpt-4o-2024-08-06",
        requested="gpt-4o",
        usage=Usage(input=86, cache_read=1920, output=300),
        cost=expected,
    )
    assert h.total_cost == expected


def test_openai_reasoning_tokens_gpt5_mini_are_output_not_extra():
    use_openai()
    mock = P.MockProvider.always(P.openai_chat_completion("gpt-5-mini-2025-08-07", 1200, 2500, reasoning=2048))
    h = CostCallbackHandler("memory://")

    P.chat_openai(mock, "gpt-5-mini").invoke("Plan the migration.", config=cfg(h))

    expected = (Decimal(1200) * Decimal("0.25") + Decimal(2500) * Decimal("2.00")) / M
    assert expected == Decimal("0.0053")
    check(
        only_event(h),
        model="gpt-5-mini-2025-08-07",
        requested="gpt-5-mini",
        usage=Usage(input=1200, output=2500, reasoning=2048),
        cost=expected,
    )


def test_openai_reasoning_and_cache_o4_mini():
    use_openai()
    mock = P.MockProvider.always(
        P.openai_chat_completion("o4-mini-2025-04-16", 5000, 1500, cached=4096, reasoning=1024)
    )
    h = CostCallbackHandler("memory://")

    P.chat_openai(mock, "o4-mini").invoke("Prove it.", config=cfg(h))

    expected = (
        Decimal(904) * Decimal("1.10") + Decimal(4096) * Decimal("0.275") + Decimal(1500) * Decimal("4.40")
    ) / M
    assert expected == Decimal("0.0087208")
    check(
        only_event(h),
        model="o4-mini-2025-04-16",
        usage=Usage(input=904, cache_read=4096, output=1500, reasoning=1024),
        cost=expected,
    )


def test_openai_stream_with_stream_usage():
    use_openai()
    mock = P.MockProvider.always(
        P.openai_chat_stream(
            "gpt-4o-mini-2024-07-18", ["Hel", "lo ", "world"], prompt=1500, completion=120, cached=1024
        )
    )
    h = CostCallbackHandler("memory://")
    llm = P.chat_openai(mock, "gpt-4o-mini", stream_usage=True)

    text = "".join(c.content for c in llm.stream("Say hello.", config=cfg(h)))

    assert text == "Hello world"
    assert mock.requests[0]["stream"] is True
    assert mock.requests[0]["stream_options"] == {"include_usage": True}
    expected = (
        Decimal(476) * Decimal("0.15") + Decimal(1024) * Decimal("0.075") + Decimal(120) * Decimal("0.60")
    ) / M
    assert expected == Decimal("0.0002202")
    check(
        only_event(h),
        model="gpt-4o-mini-2024-07-18",
        requested="gpt-4o-mini",
        usage=Usage(input=476, cache_read=1024, output=120),
        cost=expected,
    )


async def test_openai_async_invoke():
    use_openai()
    mock = P.MockProvider.always(P.openai_chat_completion("gpt-4.1-2025-04-14", 3000, 400, cached=2000))
    h = AsyncCostCallbackHandler("memory://")

    out = await P.chat_openai(mock, "gpt-4.1").ainvoke("Summarise.", config=cfg(h))

    assert out.content == "Hello from the mock."
    expected = (Decimal(1000) * Decimal("2.00") + Decimal(2000) * Decimal("0.50") + Decimal(400) * Decimal("8.00")) / M
    assert expected == Decimal("0.0062")
    check(
        only_event(h),
        model="gpt-4.1-2025-04-14",
        requested="gpt-4.1",
        usage=Usage(input=1000, cache_read=2000, output=400),
        cost=expected,
    )


async def test_openai_async_astream():
    use_openai()
    mock = P.MockProvider.always(P.openai_chat_stream("gpt-4o-2024-11-20", ["A", "B", "C"], prompt=800, completion=50))
    h = CostCallbackHandler("memory://")
    llm = P.chat_openai(mock, "gpt-4o", stream_usage=True)

    parts = [c.content async for c in llm.astream("Spell ABC.", config=cfg(h))]

    assert "".join(parts) == "ABC"
    expected = (Decimal(800) * Decimal("2.50") + Decimal(50) * Decimal("10.00")) / M
    assert expected == Decimal("0.0025")
    check(only_event(h), model="gpt-4o-2024-11-20", usage=Usage(input=800, output=50), cost=expected)


def test_openai_flex_tier_prices_at_the_flex_factor():
    use_openai()
    mock = P.MockProvider.always(
        P.openai_chat_completion("gpt-5-mini-2025-08-07", 10000, 3000, cached=6000, reasoning=2000, service_tier="flex")
    )
    h = CostCallbackHandler("memory://")
    llm = P.chat_openai(mock, "gpt-5-mini", service_tier="flex")

    out = llm.invoke("Batch job, no hurry.", config=cfg(h))

    assert mock.requests[0]["service_tier"] == "flex"
    # langchain-openai prefixes the details on the flex tier; the parser must follow them
    assert out.usage_metadata["input_token_details"]["flex_cache_read"] == 6000
    assert out.usage_metadata["output_token_details"]["flex_reasoning"] == 2000
    list_price = Decimal(4000) * Decimal("0.25") + Decimal(6000) * Decimal("0.025") + Decimal(3000) * Decimal("2.00")
    expected = Decimal("0.5") * list_price / M  # prices.json: gpt-5-mini service_tiers.flex = "0.5"
    assert expected == Decimal("0.003575")
    check(
        only_event(h),
        model="gpt-5-mini-2025-08-07",
        usage=Usage(input=4000, cache_read=6000, output=3000, reasoning=2000),
        cost=expected,
        tier="flex",
    )


def test_openai_flex_stream_uses_the_tier_price_table_o4_mini():
    use_openai()
    mock = P.MockProvider.always(
        P.openai_chat_stream(
            "o4-mini-2025-04-16", ["ok"], prompt=2000, completion=500, cached=1000, reasoning=300, service_tier="flex"
        )
    )
    h = CostCallbackHandler("memory://")
    llm = P.chat_openai(mock, "o4-mini", service_tier="flex", stream_usage=True)

    assert "".join(c.content for c in llm.stream("Think.", config=cfg(h))) == "ok"

    # o4-mini's flex tier is an explicit price table in prices.json (cache_read 0.138, not 0.1375)
    expected = (Decimal(1000) * Decimal("0.55") + Decimal(1000) * Decimal("0.138") + Decimal(500) * Decimal("2.20")) / M
    assert expected == Decimal("0.001788")
    check(
        only_event(h),
        model="o4-mini-2025-04-16",
        usage=Usage(input=1000, cache_read=1000, output=500, reasoning=300),
        cost=expected,
        tier="flex",
    )


def test_openai_priority_tier():
    use_openai()
    mock = P.MockProvider.always(
        P.openai_chat_completion("gpt-4o-2024-08-06", 1000, 200, cached=500, service_tier="priority")
    )
    h = CostCallbackHandler("memory://")

    P.chat_openai(mock, "gpt-4o", service_tier="priority").invoke("Urgent.", config=cfg(h))

    assert mock.requests[0]["service_tier"] == "priority"
    list_price = Decimal(500) * Decimal("2.50") + Decimal(500) * Decimal("1.25") + Decimal(200) * Decimal("10.00")
    expected = Decimal("1.7") * list_price / M  # prices.json: gpt-4o service_tiers.priority = "1.7"
    assert expected == Decimal("0.0065875")
    check(
        only_event(h),
        model="gpt-4o-2024-08-06",
        usage=Usage(input=500, cache_read=500, output=200),
        cost=expected,
        tier="priority",
    )


def test_openai_flex_requested_but_served_on_default_is_list_price():
    """What is billed is the tier the response reports, not the one requested."""
    use_openai()
    mock = P.MockProvider.always(P.openai_chat_completion("gpt-5-mini-2025-08-07", 1000, 100, service_tier="default"))
    h = CostCallbackHandler("memory://")

    P.chat_openai(mock, "gpt-5-mini", service_tier="flex").invoke("Hi.", config=cfg(h))

    expected = (Decimal(1000) * Decimal("0.25") + Decimal(100) * Decimal("2.00")) / M
    assert expected == Decimal("0.00045")
    check(only_event(h), model="gpt-5-mini-2025-08-07", usage=Usage(input=1000, output=100), cost=expected, tier=None)


def test_openai_stream_without_usage_is_estimated():
    use_openai()
    reply = "The quick brown fox jumps over the lazy dog, twice over."
    first, *rest = reply.split(" ")
    mock = P.MockProvider.always(P.openai_chat_stream("gpt-4o-2024-08-06", [first] + [" " + w for w in rest]))
    h = CostCallbackHandler("memory://")
    llm = P.chat_openai(mock, "gpt-4o", stream_usage=False)

    text = "".join(c.content for c in llm.stream("Tell me about foxes and dogs, in one sentence.", config=cfg(h)))

    assert text == reply
    assert "stream_options" not in mock.requests[0]
    ev = only_event(h)
    assert ev.error is None
    assert ev.estimated is True
    assert ev.model == "gpt-4o-2024-08-06"
    assert ev.usage.input > 0 and ev.usage.output > 0
    assert ev.usage.cache_read == ev.usage.cache_write == ev.usage.reasoning == 0
    # cost = the catalog's gpt-4o list price applied to the estimated tokens
    expected = (Decimal(ev.usage.input) * Decimal("2.50") + Decimal(ev.usage.output) * Decimal("10.00")) / M
    assert ev.cost == expected
    assert ev.cost == PriceCatalog.default().cost("gpt-4o", ev.usage)
    assert ev.priced is True
    assert ev.user_id == META["user_id"] and ev.task_id == META["task_id"]


def test_openai_batch_in_threads_one_event_per_input():
    use_openai()

    def reply(body, _req):
        i = int(body["messages"][0]["content"].rsplit(" ", 1)[1])
        return P.openai_chat_completion("gpt-4o-mini-2024-07-18", 100 * i, 10 * i, text=f"answer {i}")

    mock = P.MockProvider(reply)
    h = CostCallbackHandler("memory://")
    llm = P.chat_openai(mock, "gpt-4o-mini")

    outs = llm.batch([f"question {i}" for i in (1, 2, 3, 4)], config={**cfg(h), "max_concurrency": 4})

    assert [o.content for o in outs] == ["answer 1", "answer 2", "answer 3", "answer 4"]
    assert mock.calls == 4
    assert len(h.events) == 4
    assert len({e.span_id for e in h.events}) == 4
    by_input = {e.usage.input: e for e in h.events}
    assert sorted(by_input) == [100, 200, 300, 400]
    total = Decimal(0)
    for i in (1, 2, 3, 4):
        expected = (Decimal(100 * i) * Decimal("0.15") + Decimal(10 * i) * Decimal("0.60")) / M
        usage = Usage(input=100 * i, output=10 * i)
        check(by_input[100 * i], model="gpt-4o-mini-2024-07-18", usage=usage, cost=expected)
        total += expected
    assert total == Decimal("0.00021")
    assert h.total_cost == total == sum(e.cost for e in h.events)


def test_openai_n_choices_usage_counted_once():
    """langchain-openai copies the response's usage onto every choice; the call is billed once."""
    use_openai()
    mock = P.MockProvider.always(P.openai_chat_completion("gpt-4o-mini-2024-07-18", 50, 40, n=2))
    h = CostCallbackHandler("memory://")

    from langchain_core.messages import HumanMessage

    llm = P.chat_openai(mock, "gpt-4o-mini", n=2)
    result = llm.generate([[HumanMessage("Two ideas?")]], callbacks=[h], metadata=META)

    assert mock.requests[0]["n"] == 2
    assert len(result.generations[0]) == 2
    expected = (Decimal(50) * Decimal("0.15") + Decimal(40) * Decimal("0.60")) / M
    assert expected == Decimal("0.0000315")
    check(only_event(h), model="gpt-4o-mini-2024-07-18", usage=Usage(input=50, output=40), cost=expected)


def test_openai_completions_llm_reads_llm_output_token_usage():
    """A completion-style LLM has no usage_metadata: llm_output["token_usage"] is the source."""
    use_openai()
    import httpx
    from langchain_openai import OpenAI

    body = {
        "id": "cmpl-mock",
        "object": "text_completion",
        "created": P.CREATED,
        "model": "gpt-3.5-turbo-instruct",
        "choices": [{"text": " Paris.", "index": 0, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    }
    mock = P.MockProvider.always(body)
    llm = OpenAI(
        model="gpt-3.5-turbo-instruct",
        api_key="sk-test",
        max_retries=0,
        http_client=httpx.Client(transport=mock.httpx_transport()),
    )
    catalog = PriceCatalog.default().merged(
        {"gpt-3.5-turbo-instruct": {"provider": "openai", "input": "1.50", "output": "2.00"}}
    )
    h = CostCallbackHandler("memory://", catalog=catalog)

    assert llm.invoke("The capital of France is", config=cfg(h)) == " Paris."

    expected = (Decimal(10) * Decimal("1.50") + Decimal(20) * Decimal("2.00")) / M
    assert expected == Decimal("0.000055")
    check(only_event(h), model="gpt-3.5-turbo-instruct", usage=Usage(input=10, output=20), cost=expected)


# ==========================================================================================
# OpenAI Responses API
# ==========================================================================================
def test_responses_api_cached_and_reasoning_tokens():
    use_openai()
    mock = P.MockProvider.always(P.openai_responses("o4-mini-2025-04-16", 3000, 900, cached=2048, reasoning=768))
    h = CostCallbackHandler("memory://")
    llm = P.chat_openai(mock, "o4-mini", use_responses_api=True)

    out = llm.invoke("Solve it.", config=cfg(h))

    assert mock.urls[0].endswith("/v1/responses")
    assert out.text == "Hello from the mock."
    expected = (
        Decimal(952) * Decimal("1.10") + Decimal(2048) * Decimal("0.275") + Decimal(900) * Decimal("4.40")
    ) / M
    assert expected == Decimal("0.0055704")
    check(
        only_event(h),
        model="o4-mini-2025-04-16",
        requested="o4-mini",
        usage=Usage(input=952, cache_read=2048, output=900, reasoning=768),
        cost=expected,
    )


def test_responses_api_stream():
    use_openai()
    mock = P.MockProvider.always(
        P.openai_responses_stream("gpt-5-2025-08-07", ["Str", "eam", "ed"], 4000, 600, cached=1000, reasoning=256)
    )
    h = CostCallbackHandler("memory://")
    llm = P.chat_openai(mock, "gpt-5", use_responses_api=True)

    chunks = list(llm.stream("Stream please.", config=cfg(h)))

    assert mock.requests[0]["stream"] is True
    assert "".join(c.text for c in chunks) == "Streamed"
    expected = (
        Decimal(3000) * Decimal("1.25") + Decimal(1000) * Decimal("0.125") + Decimal(600) * Decimal("10.00")
    ) / M
    assert expected == Decimal("0.009875")
    check(
        only_event(h),
        model="gpt-5-2025-08-07",
        usage=Usage(input=3000, cache_read=1000, output=600, reasoning=256),
        cost=expected,
    )


def test_responses_api_flex_tier():
    use_openai()
    mock = P.MockProvider.always(P.openai_responses("gpt-5-2025-08-07", 2000, 100, cached=500, service_tier="flex"))
    h = CostCallbackHandler("memory://")

    P.chat_openai(mock, "gpt-5", use_responses_api=True, service_tier="flex").invoke("Later.", config=cfg(h))

    assert mock.requests[0]["service_tier"] == "flex"
    list_price = Decimal(1500) * Decimal("1.25") + Decimal(500) * Decimal("0.125") + Decimal(100) * Decimal("10.00")
    expected = Decimal("0.5") * list_price / M  # prices.json: gpt-5 service_tiers.flex = "0.5"
    assert expected == Decimal("0.00146875")
    check(
        only_event(h),
        model="gpt-5-2025-08-07",
        usage=Usage(input=1500, cache_read=500, output=100),
        cost=expected,
        tier="flex",
    )


# ==========================================================================================
# Anthropic Messages
# ==========================================================================================
SONNET = "claude-sonnet-4-5-20250929"


def test_anthropic_cache_read_is_not_in_input_tokens():
    use_anthropic()
    mock = P.MockProvider.always(P.anthropic_message(SONNET, 100, 50, cache_read=5000))
    h = CostCallbackHandler("memory://")

    out = P.chat_anthropic(mock, SONNET).invoke("Use the cached manual.", config=cfg(h))

    assert out.content == "Hello from the mock."
    assert mock.requests[0]["max_tokens"] == 64
    assert out.usage_metadata["input_tokens"] == 5100  # LangChain's SUM
    expected = (Decimal(100) * Decimal("3.00") + Decimal(5000) * Decimal("0.30") + Decimal(50) * Decimal("15.00")) / M
    assert expected == Decimal("0.00255")
    check(
        only_event(h),
        model=SONNET,
        requested=SONNET,
        usage=Usage(input=100, cache_read=5000, output=50),
        cost=expected,
    )


def test_anthropic_cache_write_split_5m_and_1h():
    use_anthropic()
    mock = P.MockProvider.always(P.anthropic_message(SONNET, 100, 50, cache_read=5000, split=(1000, 2000)))
    h = CostCallbackHandler("memory://")

    P.chat_anthropic(mock, SONNET).invoke("Write both caches.", config=cfg(h))

    expected = (
        Decimal(100) * Decimal("3.00")
        + Decimal(5000) * Decimal("0.30")
        + Decimal(1000) * Decimal("3.75")
        + Decimal(2000) * Decimal("6.00")
        + Decimal(50) * Decimal("15.00")
    ) / M
    assert expected == Decimal("0.0183")
    check(
        only_event(h),
        model=SONNET,
        usage=Usage(input=100, cache_read=5000, cache_write_5m=1000, cache_write_1h=2000, output=50),
        cost=expected,
    )


def test_anthropic_cache_write_without_split_is_5m():
    use_anthropic()
    mock = P.MockProvider.always(P.anthropic_message(SONNET, 200, 100, cache_creation=4000))
    h = CostCallbackHandler("memory://")

    P.chat_anthropic(mock, SONNET).invoke("Write the cache.", config=cfg(h))

    expected = (Decimal(200) * Decimal("3.00") + Decimal(4000) * Decimal("3.75") + Decimal(100) * Decimal("15.00")) / M
    assert expected == Decimal("0.0171")
    check(only_event(h), model=SONNET, usage=Usage(input=200, cache_write_5m=4000, output=100), cost=expected)


def test_anthropic_stream():
    use_anthropic()
    mock = P.MockProvider.always(
        P.anthropic_stream(SONNET, ["Hel", "lo", "!"], 20, 42, cache_read=3000, cache_creation=500)
    )
    h = CostCallbackHandler("memory://")

    chunks = list(P.chat_anthropic(mock, SONNET).stream("Greet me.", config=cfg(h)))

    assert mock.requests[0]["stream"] is True
    assert "".join(c.text for c in chunks) == "Hello!"
    expected = (
        Decimal(20) * Decimal("3.00")
        + Decimal(3000) * Decimal("0.30")
        + Decimal(500) * Decimal("3.75")
        + Decimal(42) * Decimal("15.00")
    ) / M
    assert expected == Decimal("0.003465")
    check(
        only_event(h),
        model=SONNET,
        usage=Usage(input=20, cache_read=3000, cache_write_5m=500, output=42),
        cost=expected,
    )


def test_anthropic_stream_with_output_only_message_delta_is_estimated_not_undercounted(caplog):
    """Older API versions and Anthropic-compatible gateways put the input side in message_start only
    and send ``message_delta.usage = {"output_tokens": N}``; langchain-anthropic 1.7.7 reads the delta
    alone, so its usage_metadata says 0 input tokens. That must not become an exact-looking undercount."""
    use_anthropic()
    mock = P.MockProvider.always(
        P.anthropic_stream(SONNET, ["Hi"], 1200, 42, cache_read=3000, delta_output_only=True)
    )
    h = CostCallbackHandler("memory://")

    with caplog.at_level(logging.WARNING, logger="agentcost"):
        chunks = list(P.chat_anthropic(mock, SONNET).stream("Greet me warmly, please.", config=cfg(h)))

    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert merged.usage_metadata["input_tokens"] == 0  # what LangChain hands the callback
    ev = only_event(h)
    assert ev.error is None
    assert ev.estimated is True
    assert ev.model == SONNET
    assert ev.usage.input > 0 and ev.usage.output > 0
    assert ev.cost == (Decimal(ev.usage.input) * Decimal("3.00") + Decimal(ev.usage.output) * Decimal("15.00")) / M
    assert any("no input tokens" in r.getMessage() for r in caplog.records)
    assert ev.feature == META["feature"]


def test_anthropic_long_context_reprices_whole_request():
    use_anthropic()
    # 150,000 + 50,001 cached = 200,001 prompt tokens > 200,000: every bucket, output too, at long rates
    mock = P.MockProvider.always(P.anthropic_message(SONNET, 150_000, 2000, cache_read=50_001))
    h = CostCallbackHandler("memory://")

    P.chat_anthropic(mock, SONNET).invoke("Read this whole repository.", config=cfg(h))

    expected = (
        Decimal(150_000) * Decimal("6.00") + Decimal(50_001) * Decimal("0.60") + Decimal(2000) * Decimal("22.50")
    ) / M
    assert expected == Decimal("0.9750006")
    check(only_event(h), model=SONNET, usage=Usage(input=150_000, cache_read=50_001, output=2000), cost=expected)


def test_anthropic_long_context_counts_cache_writes_toward_threshold():
    use_anthropic()
    mock = P.MockProvider.always(P.anthropic_message(SONNET, 199_000, 100, cache_creation=1001))
    h = CostCallbackHandler("memory://")

    P.chat_anthropic(mock, SONNET).invoke("Cache the rest.", config=cfg(h))

    expected = (
        Decimal(199_000) * Decimal("6.00") + Decimal(1001) * Decimal("7.50") + Decimal(100) * Decimal("22.50")
    ) / M
    assert expected == Decimal("1.2037575")
    check(only_event(h), model=SONNET, usage=Usage(input=199_000, cache_write_5m=1001, output=100), cost=expected)


def test_anthropic_at_threshold_uses_base_rates():
    use_anthropic()
    # exactly 200,000 prompt tokens: the tier starts strictly above the threshold
    mock = P.MockProvider.always(P.anthropic_message(SONNET, 150_000, 2000, cache_read=50_000))
    h = CostCallbackHandler("memory://")

    P.chat_anthropic(mock, SONNET).invoke("Read most of the repository.", config=cfg(h))

    expected = (
        Decimal(150_000) * Decimal("3.00") + Decimal(50_000) * Decimal("0.30") + Decimal(2000) * Decimal("15.00")
    ) / M
    assert expected == Decimal("0.495")
    check(only_event(h), model=SONNET, usage=Usage(input=150_000, cache_read=50_000, output=2000), cost=expected)


def test_anthropic_haiku_4_5_prices():
    use_anthropic()
    model = "claude-haiku-4-5-20251001"
    mock = P.MockProvider.always(P.anthropic_message(model, 1000, 500, cache_read=2000, split=(0, 3000)))
    h = CostCallbackHandler("memory://")

    P.chat_anthropic(mock, model).invoke("Quick one.", config=cfg(h))

    expected = (
        Decimal(1000) * Decimal("1.00")
        + Decimal(2000) * Decimal("0.10")
        + Decimal(3000) * Decimal("2.00")
        + Decimal(500) * Decimal("5.00")
    ) / M
    assert expected == Decimal("0.0097")
    check(
        only_event(h),
        model=model,
        usage=Usage(input=1000, cache_read=2000, cache_write_1h=3000, output=500),
        cost=expected,
    )


def test_anthropic_opus_4_1_prices():
    use_anthropic()
    model = "claude-opus-4-1-20250805"
    mock = P.MockProvider.always(P.anthropic_message(model, 500, 300, split=(1000, 0)))
    h = CostCallbackHandler("memory://")

    P.chat_anthropic(mock, model).invoke("Think hard.", config=cfg(h))

    expected = (
        Decimal(500) * Decimal("15.00") + Decimal(1000) * Decimal("18.75") + Decimal(300) * Decimal("75.00")
    ) / M
    assert expected == Decimal("0.04875")
    check(only_event(h), model=model, usage=Usage(input=500, cache_write_5m=1000, output=300), cost=expected)


async def test_anthropic_async_invoke():
    use_anthropic()
    mock = P.MockProvider.always(P.anthropic_message(SONNET, 300, 80))
    h = AsyncCostCallbackHandler("memory://")

    out = await P.chat_anthropic(mock, SONNET).ainvoke("Async hello.", config=cfg(h))

    assert out.content == "Hello from the mock."
    expected = (Decimal(300) * Decimal("3.00") + Decimal(80) * Decimal("15.00")) / M
    assert expected == Decimal("0.0021")
    check(only_event(h), model=SONNET, usage=Usage(input=300, output=80), cost=expected)


async def test_anthropic_async_astream():
    use_anthropic()
    mock = P.MockProvider.always(P.anthropic_stream(SONNET, ["as", "ync"], 10, 20, cache_read=1000))
    h = AsyncCostCallbackHandler("memory://")

    parts = [c.text async for c in P.chat_anthropic(mock, SONNET).astream("Async stream.", config=cfg(h))]

    assert "".join(parts) == "async"
    expected = (Decimal(10) * Decimal("3.00") + Decimal(1000) * Decimal("0.30") + Decimal(20) * Decimal("15.00")) / M
    assert expected == Decimal("0.00063")
    check(only_event(h), model=SONNET, usage=Usage(input=10, cache_read=1000, output=20), cost=expected)


# ==========================================================================================
# Gemini through langchain-google-genai (real google-genai client over httpx.MockTransport)
# ==========================================================================================
def test_gemini_2_5_pro_above_200k_with_cache_and_thoughts():
    use_gemini()
    mock = P.MockProvider.always(P.gemini_response("gemini-2.5-pro", 250_000, 1000, cached=100_000, thoughts=500))
    h = CostCallbackHandler("memory://")

    out = P.chat_gemini(mock, "gemini-2.5-pro").invoke("Read the whole codebase.", config=cfg(h))

    assert ":generateContent" in mock.urls[0]
    assert out.usage_metadata["input_tokens"] == 250_000  # includes the 100k cached
    assert out.usage_metadata["output_tokens"] == 1500  # candidates + thoughts
    expected = (
        Decimal(150_000) * Decimal("2.50") + Decimal(100_000) * Decimal("0.25") + Decimal(1500) * Decimal("15.00")
    ) / M
    assert expected == Decimal("0.4225")
    check(
        only_event(h),
        model="gemini-2.5-pro",
        requested="gemini-2.5-pro",
        usage=Usage(input=150_000, cache_read=100_000, output=1500, reasoning=500),
        cost=expected,
    )


def test_gemini_2_5_pro_at_200k_uses_base_rates():
    use_gemini()
    mock = P.MockProvider.always(P.gemini_response("gemini-2.5-pro", 200_000, 1000, cached=50_000))
    h = CostCallbackHandler("memory://")

    P.chat_gemini(mock, "gemini-2.5-pro").invoke("Read most of the codebase.", config=cfg(h))

    expected = (
        Decimal(150_000) * Decimal("1.25") + Decimal(50_000) * Decimal("0.125") + Decimal(1000) * Decimal("10.00")
    ) / M
    assert expected == Decimal("0.20375")
    usage = Usage(input=150_000, cache_read=50_000, output=1000)
    check(only_event(h), model="gemini-2.5-pro", usage=usage, cost=expected)


def test_gemini_flash_stream_cumulative_usage():
    use_gemini()
    mock = P.MockProvider.always(P.gemini_stream("gemini-2.5-flash", ["Hel", "lo", "!"], 1200, 30, thoughts=70))
    h = CostCallbackHandler("memory://")

    chunks = list(P.chat_gemini(mock, "gemini-2.5-flash").stream("Greet.", config=cfg(h)))

    assert ":streamGenerateContent" in mock.urls[0]
    assert "".join(c.text for c in chunks) == "Hello!"
    expected = (Decimal(1200) * Decimal("0.30") + Decimal(100) * Decimal("2.50")) / M
    assert expected == Decimal("0.00061")
    check(only_event(h), model="gemini-2.5-flash", usage=Usage(input=1200, output=100, reasoning=70), cost=expected)


async def test_gemini_async_invoke_with_cache():
    use_gemini()
    mock = P.MockProvider.always(P.gemini_response("gemini-2.5-flash", 4000, 200, cached=3000))
    h = AsyncCostCallbackHandler("memory://")

    await P.chat_gemini(mock, "gemini-2.5-flash").ainvoke("Async.", config=cfg(h))

    expected = (Decimal(1000) * Decimal("0.30") + Decimal(3000) * Decimal("0.03") + Decimal(200) * Decimal("2.50")) / M
    assert expected == Decimal("0.00089")
    check(only_event(h), model="gemini-2.5-flash", usage=Usage(input=1000, cache_read=3000, output=200), cost=expected)


# ==========================================================================================
# LangChain LLM cache, attribution, unknown models, errors, malformed usage
# ==========================================================================================
@pytest.fixture
def llm_cache():
    from langchain_core.caches import InMemoryCache
    from langchain_core.globals import get_llm_cache, set_llm_cache

    previous = get_llm_cache()
    cache = InMemoryCache()
    set_llm_cache(cache)
    try:
        yield cache
    finally:
        set_llm_cache(previous)


def test_llm_cache_hit_costs_zero_and_records_saving(llm_cache):
    use_openai()
    mock = P.MockProvider.always(P.openai_chat_completion("gpt-4o-2024-08-06", 1000, 100, cached=200))
    h = CostCallbackHandler("memory://")
    llm = P.chat_openai(mock, "gpt-4o")

    first = llm.invoke("Same prompt.", config=cfg(h))
    second = llm.invoke("Same prompt.", config=cfg(h))

    assert mock.calls == 1  # the second call never reached the provider
    assert second.content == first.content
    assert len(h.events) == 2
    paid, hit = h.events
    expected = (Decimal(800) * Decimal("2.50") + Decimal(200) * Decimal("1.25") + Decimal(100) * Decimal("10.00")) / M
    assert expected == Decimal("0.00325")
    check(paid, model="gpt-4o-2024-08-06", usage=Usage(input=800, cache_read=200, output=100), cost=expected)
    assert hit.cache_hit is True
    assert hit.cost == Decimal(0)
    assert hit.saved == paid.cost == expected
    assert hit.model == "gpt-4o-2024-08-06"
    assert hit.user_id == META["user_id"] and hit.session_id == META["session_id"]
    assert h.total_cost == expected


def test_attribution_from_metadata_overrides_constructor_defaults():
    use_openai()
    mock = P.MockProvider.always(P.openai_chat_completion("gpt-4o-mini-2024-07-18", 100, 10))
    h = CostCallbackHandler(
        "memory://",
        user_id="default-user",
        session_id="default-session",
        feature="default-feature",
        agent_id="default-agent",
        task_id="default-task",
    )
    llm = P.chat_openai(mock, "gpt-4o-mini")
    expected = (Decimal(100) * Decimal("0.15") + Decimal(10) * Decimal("0.60")) / M
    usage = Usage(input=100, output=10)
    model = "gpt-4o-mini-2024-07-18"

    # 1. LangGraph-style thread_id becomes the session; every other field overridden
    run_meta = {"user_id": "u-1", "thread_id": "thread-9", "feature": "f-1", "agent_id": "a-1", "task_id": "t-1"}
    llm.invoke("one", config={"callbacks": [h], "metadata": run_meta})
    # 2. nothing in metadata: the constructor's defaults
    llm.invoke("two", config={"callbacks": [h]})
    # 3. an explicit session_id wins over thread_id; unspecified fields fall back to defaults
    llm.invoke("three", config={"callbacks": [h], "metadata": {"session_id": "sess-x", "thread_id": "thread-y"}})

    e1, e2, e3 = h.events
    check(
        e1,
        model=model,
        usage=usage,
        cost=expected,
        meta={"user_id": "u-1", "session_id": "thread-9", "feature": "f-1", "agent_id": "a-1", "task_id": "t-1"},
    )
    defaults = {
        "user_id": "default-user",
        "session_id": "default-session",
        "feature": "default-feature",
        "agent_id": "default-agent",
        "task_id": "default-task",
    }
    check(e2, model=model, usage=usage, cost=expected, meta=defaults)
    check(e3, model=model, usage=usage, cost=expected, meta={**defaults, "session_id": "sess-x"})
    assert h.total_cost == 3 * expected


def test_unknown_model_is_unpriced_not_free():
    use_openai()
    mock = P.MockProvider.always(P.openai_chat_completion("my-private-model", 500, 50))
    h = CostCallbackHandler("memory://")
    llm = P.chat_openai(mock, "my-private-model")

    out = llm.invoke("Hello private model.", config=cfg(h))

    assert out.content == "Hello from the mock."
    ev = only_event(h)
    assert ev.model == "my-private-model"
    assert ev.usage == Usage(input=500, output=50)  # usage is still recorded exactly
    assert ev.cost is None
    assert ev.priced is False
    assert ev.error is None
    assert ev.user_id == META["user_id"] and ev.agent_id == META["agent_id"]
    assert h.total_cost == Decimal(0)
    assert h.unpriced_calls == 1


def _call_error(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the exception is the thing under test
        return e
    raise AssertionError("the call did not raise")


@pytest.mark.parametrize("status", [500, 400])
def test_openai_http_error_propagates_and_is_recorded(status):
    use_openai()
    import openai

    mock = P.MockProvider(lambda _b, _r: P.openai_error(status))
    h = CostCallbackHandler("memory://")

    bare = _call_error(lambda: P.chat_openai(mock, "gpt-4o").invoke("Fail."))
    tracked = _call_error(lambda: P.chat_openai(mock, "gpt-4o").invoke("Fail.", config=cfg(h)))

    expected_type = openai.InternalServerError if status == 500 else openai.BadRequestError
    # langchain-openai re-raises the SDK error as its own subclass; the handler must not change that
    assert isinstance(tracked, expected_type)
    assert type(tracked) is type(bare)
    assert str(tracked) == str(bare)
    assert mock.calls == 2  # max_retries=0: one request per call
    ev = only_event(h)
    assert ev.error == f"{type(tracked).__name__} ({status})"  # class and status: no message by default
    assert ev.cost is None
    assert ev.priced is False
    assert ev.usage == Usage()
    assert ev.requested_model == "gpt-4o"
    assert ev.user_id == META["user_id"] and ev.feature == META["feature"]
    assert h.total_cost == Decimal(0)
    assert h.unpriced_calls == 0  # a failed call is not an unpriced call


async def test_anthropic_http_error_async_propagates_and_is_recorded():
    use_anthropic()
    import anthropic

    mock = P.MockProvider(lambda _b, _r: P.anthropic_error(500))
    h = AsyncCostCallbackHandler("memory://")

    with pytest.raises(anthropic.InternalServerError) as raised:
        await P.chat_anthropic(mock, SONNET).ainvoke("Fail.", config=cfg(h))

    assert mock.calls == 1
    ev = only_event(h)
    # langchain-anthropic re-raises the SDK error as its own subclass (AnthropicAPIError)
    assert ev.error == f"{type(raised.value).__name__} (500)"
    assert ev.cost is None and ev.priced is False
    assert ev.usage == Usage()
    assert ev.session_id == META["session_id"] and ev.task_id == META["task_id"]
    assert h.total_cost == Decimal(0)


def test_anthropic_http_400_error_sync():
    use_anthropic()
    import anthropic

    mock = P.MockProvider(lambda _b, _r: P.anthropic_error(400, "max_tokens: Field required"))
    h = CostCallbackHandler("memory://")

    with pytest.raises(anthropic.BadRequestError, match="max_tokens") as raised:
        P.chat_anthropic(mock, SONNET).invoke("Bad.", config=cfg(h))

    ev = only_event(h)
    assert ev.error == f"{type(raised.value).__name__} (400)"
    assert ev.cost is None and ev.usage == Usage()


@pytest.mark.parametrize(
    "usage",
    [
        # cached tokens larger than the prompt they are part of
        {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120, "prompt_tokens_details": {"cached_tokens": 500}},  # noqa: E501
        # a string where a count belongs
        {"prompt_tokens": "lots", "completion_tokens": 20, "total_tokens": 120},
        # negative counts
        {"prompt_tokens": -100, "completion_tokens": 20, "total_tokens": -80},
        # reasoning larger than the output it is part of
        {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120, "completion_tokens_details": {"reasoning_tokens": 64}},  # noqa: E501
    ],
    ids=["cached>prompt", "string", "negative", "reasoning>output"],
)
def test_openai_malformed_usage_never_breaks_the_call(usage, caplog):
    use_openai()
    mock = P.MockProvider.always(P.openai_chat_completion("gpt-4o-2024-08-06", 0, 0, usage=usage))
    h = CostCallbackHandler("memory://")

    with caplog.at_level(logging.WARNING, logger="agentcost"):
        out = P.chat_openai(mock, "gpt-4o").invoke("Hello.", config=cfg(h))

    assert out.content == "Hello from the mock."
    ev = only_event(h)
    assert ev.error is None
    assert ev.estimated is True or ev.cost is None
    if ev.cost is not None:  # estimated tokens, priced at the list price
        assert ev.usage.input > 0 and ev.usage.output > 0
        assert ev.cost == (Decimal(ev.usage.input) * Decimal("2.50") + Decimal(ev.usage.output) * Decimal("10.00")) / M
    assert ev.user_id == META["user_id"]
    assert any("malformed usage" in r.getMessage() for r in caplog.records)
    assert h.recorder.internal_errors == 0


def test_anthropic_malformed_negative_usage_never_breaks_the_call(caplog):
    use_anthropic()
    mock = P.MockProvider.always(P.anthropic_message(SONNET, -50, 30))
    h = CostCallbackHandler("memory://")

    with caplog.at_level(logging.WARNING, logger="agentcost"):
        out = P.chat_anthropic(mock, SONNET).invoke("Hello.", config=cfg(h))

    assert out.content == "Hello from the mock."
    ev = only_event(h)
    assert ev.error is None
    assert ev.estimated is True or ev.cost is None
    assert ev.usage.input >= 0 and ev.usage.output >= 0
    assert any("malformed usage" in r.getMessage() for r in caplog.records)
    assert ev.agent_id == META["agent_id"]
