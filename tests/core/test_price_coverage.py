"""Acceptance of the price data: commonly used model ids are priced, and our compiled Decimal prices
agree exactly with genai-prices' own ``calc_price`` (except where the overlay says why)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from genai_prices import Usage as GenaiUsage

from agentcost_core import PriceCatalog, Usage
from agentcost_core.prices.base import BasePrices, load_overlay
from agentcost_core.prices.genai import GenaiPrices, genai_version, load_providers

COMMON_IDS = [
    # OpenAI
    "gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-2024-05-13", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4.1",
    "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4-turbo", "gpt-4", "gpt-3.5-turbo", "gpt-3.5-turbo-0613",
    "gpt-3.5-turbo-1106", "o1", "o1-mini", "o1-pro", "o3", "o3-mini", "o3-pro", "o4-mini", "gpt-5", "gpt-5-mini",
    "gpt-5-nano", "gpt-5-pro", "gpt-5-codex", "gpt-5.1", "gpt-5.1-codex", "gpt-5.2", "gpt-5.4", "gpt-5.5",
    "chatgpt-4o-latest", "text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002",
    # OpenAI fine-tunes, with and without a provider prefix
    "ft:gpt-4o-mini-2024-07-18:org::abc123", "openai/ft:gpt-4o-mini-2024-07-18:org::abc123",
    "ft:gpt-4o-2024-08-06:acme:support:xyz", "ft:gpt-3.5-turbo-0125:org::id9",
    # Anthropic
    "claude-opus-4-1", "claude-opus-4-5", "claude-sonnet-4-5-20250929", "claude-sonnet-4", "claude-haiku-4-5",
    "claude-3-7-sonnet-20250219", "claude-3-5-sonnet-20241022", "claude-3-5-haiku-20241022", "claude-3-haiku-20240307",
    "claude-3-opus-20240229", "claude-sonnet-4-6", "claude-opus-4-6",
    # Google
    "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.0-flash", "gemini-2.0-flash-lite",
    "gemini-1.5-pro", "gemini-1.5-flash", "gemini-1.5-flash-002", "models/gemini-2.5-flash", "gemini-3-pro-preview",
    "gemini-embedding-001",
    # xAI, Mistral, DeepSeek, Moonshot
    "grok-4", "grok-3", "grok-3-mini", "grok-code-fast-1", "grok-4-fast-reasoning", "mistral-large-latest",
    "mistral-small-latest", "mistral-medium-latest", "codestral", "open-mistral-nemo", "mistral-embed",
    "deepseek-chat", "deepseek-reasoner", "kimi-k2", "kimi-k2-thinking",
    # open-weight models on OpenRouter / Together / Groq
    "openrouter/meta-llama/llama-3.3-70b-instruct", "meta-llama/llama-3.1-8b-instruct", "qwen/qwen3-235b-a22b",
    "moonshotai/kimi-k2", "openai/gpt-oss-120b", "openrouter/openai/gpt-oss-20b",
    "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", "groq/llama-3.3-70b-versatile", "groq/llama-3.1-8b-instant",
    "groq/openai/gpt-oss-120b", "groq/moonshotai/kimi-k2-instruct", "groq/qwen/qwen3-32b",
    # Bedrock (regional profiles too), Vertex, Azure
    "anthropic.claude-3-haiku-20240307-v1:0", "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "eu.anthropic.claude-3-5-haiku-20241022-v1:0", "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "bedrock/us.anthropic.claude-3-7-sonnet-20250219-v1:0", "meta.llama3-1-70b-instruct-v1:0",
    "meta.llama3-3-70b-instruct-v1:0", "openai.gpt-oss-120b-1:0", "amazon.nova-pro-v1:0", "amazon.nova-lite-v1:0",
    "amazon.titan-embed-text-v2:0", "claude-sonnet-4-5@20250929", "vertex_ai/gemini-2.5-pro",
    "vertex_ai/claude-3-5-haiku@20241022", "azure/gpt-4o", "azure/gpt-4o-mini", "azure/o3-mini",
    "azure/text-embedding-3-small", "azure/gpt-4.1",
]  # fmt: skip


def test_commonly_used_model_ids_are_priced() -> None:
    catalog = PriceCatalog.default()
    unpriced = [m for m in COMMON_IDS if catalog.get(m) is None]
    priced = len(COMMON_IDS) - len(unpriced)
    print(
        f"\npriced {priced} of {len(COMMON_IDS)} common model ids ({100 * priced / len(COMMON_IDS):.1f}%); unpriced: {unpriced}"
    )
    assert len(COMMON_IDS) >= 105
    assert priced / len(COMMON_IDS) >= 0.98


@pytest.mark.parametrize(
    "model, provider, expected",
    [
        ("gpt-3.5-turbo-0613", "openai", "gpt-3.5-turbo-0613"),  # dated snapshots at their own price
        ("gpt-3.5-turbo-1106", "openai", "gpt-3.5-turbo-1106"),
        ("ft:gpt-4o-mini-2024-07-18:org::abc123", "openai", "ft:gpt-4o-mini"),  # the fine-tuned rates
        ("openai/ft:gpt-4o-mini-2024-07-18:org::abc123", "openai", "ft:gpt-4o-mini"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "aws", "regional.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        ("azure/gpt-4o", "openai", "gpt-4o"),  # genai-prices: Azure charges OpenAI's price for it
        ("azure/o3-mini", "azure", "o3-mini"),  # Azure's own entry
        ("openrouter/meta-llama/llama-3.3-70b-instruct", "openrouter", "meta-llama/llama-3.3-70b-instruct"),
        ("vertex_ai/gemini-2.5-pro", "google", "gemini-2.5-pro"),
    ],
)
def test_platform_ids_resolve_to_that_platforms_price(model: str, provider: str, expected: str) -> None:
    p = PriceCatalog.default().get(model)
    assert p is not None and (p.provider, p.model) == (provider, expected)


def test_snapshots_and_fine_tunes_are_not_their_base_models_price() -> None:
    c = PriceCatalog.default()
    assert c.get("gpt-3.5-turbo-0613").base != c.get("gpt-3.5-turbo").base
    assert c.get("ft:gpt-4o-mini-2024-07-18:org::x").base.input == 2 * c.get("gpt-4o-mini").base.input
    assert c.get("openai/ft:gpt-4o-mini-2024-07-18:org::x") == c.get("ft:gpt-4o-mini-2024-07-18:org::x")
    assert c.get("totally-unknown-model-x") is None and c.cost("totally-unknown-model-x", Usage(input=5)) is None


def _explained(provider: str, model: str, tier: str | None, corrections: dict) -> str | None:
    entry = corrections.get((provider, model))
    if entry and entry.get("corrects"):
        return entry["reason"]
    return None


def test_seeded_cross_check_against_genai_prices_calc_price() -> None:
    """2,400 random (model, usage, tier) cases: our Decimal cost equals genai-prices' calc_price
    exactly (genai-prices' ``ModelInfo.calc_price``, which ``calc_price`` calls after matching the id),
    except where the overlay corrects that model (its reason is counted)."""
    rng = random.Random(20261204)
    genai = GenaiPrices.build(load_providers(), origin=f"genai-prices {genai_version()}")
    base = BasePrices(genai, load_overlay())
    now = datetime.now(UTC)
    when = now.timestamp()  # one moment for both sides (time-of-day prices: the same window)
    keys = sorted(genai.entries)
    agree = explained = 0
    reasons: dict[str, int] = {}
    for _ in range(2400):
        provider, model = rng.choice(keys)
        info = genai.model_info(provider, model)
        ours = base.model_price((provider, model), when)
        tier = rng.choice([None, None, *sorted(ours.tiers)])
        big = rng.random() < 0.2 and ours.long_context_threshold
        u = Usage(
            input=rng.randint(0, 400_000 if big else 20_000),
            cache_read=rng.choice([0, rng.randint(0, 50_000)]),
            cache_write_5m=rng.choice([0, 0, rng.randint(0, 5_000)]),
            cache_write_1h=rng.choice([0, 0, rng.randint(0, 5_000)]),
            output=rng.randint(0, 8_000),
        )
        gu = GenaiUsage(input_tokens=u.prompt_tokens, cache_read_tokens=u.cache_read,
                        cache_write_tokens=u.cache_write, cache_write_1h_tokens=u.cache_write_1h,
                        output_tokens=u.output)  # fmt: skip
        context = {"processing": "batch"} if tier == "batch" else ({"service_tier": tier} if tier else None)
        owner = next(p for p in genai.providers if p.id == provider)
        theirs = info.calc_price(gu, owner, genai_request_timestamp=now, price_context=context)
        ref = theirs.total_price  # per-request fees included (Perplexity's Sonar models)
        mine = ours.cost(u, tier)
        if mine == ref:
            agree += 1
            continue
        reason = _explained(provider, model, tier, base.corrections)
        assert reason, f"{provider}/{model} tier={tier} {u}: ours {mine} != genai-prices {ref}"
        explained += 1
        reasons[reason] = reasons.get(reason, 0) + 1
    print(f"\ncross-check: {agree} agree exactly, {explained} differ as the overlay explains: {reasons}")
    assert agree + explained == 2400 and agree >= 2000
