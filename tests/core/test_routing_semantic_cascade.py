"""SemanticPolicy (nearest route examples by embedding, any LangChain / LlamaIndex embedder or a
callable, examples embedded once) and CascadePolicy (cheap tier first; a callable, pydantic or
logprob-confidence validator decides escalation). No network: the embedders are local fakes."""

from __future__ import annotations

import logging
import math
import re
import threading
import zlib
from typing import Any

import pytest
from pydantic import BaseModel

from agentcost_core.errors import ConfigurationError
from agentcost_core.routing import (
    CascadePolicy,
    HeuristicPolicy,
    Router,
    RouteRequest,
    SemanticPolicy,
    StaticPolicy,
    UserTierCap,
)
from agentcost_core.routing import semantic as semantic_module
from agentcost_core.routing.cascade import escalation_reason

TIERS = {"nano": "gpt-4.1-nano", "frontier": "gpt-4.1"}
DIM = 256
_STOP = set("a an the this these of for to into and or our is it as from in each under what why where".split())


def bow(text: str) -> list[float]:
    """A deterministic hashed bag-of-words vector (dimension 256)."""
    v = [0.0] * DIM
    for w in re.findall(r"[a-z]+", text.lower()):
        if w in _STOP:
            continue
        v[zlib.crc32(w.rstrip("s").encode()) % DIM] += 1.0
    return v


ROUTES = {
    "nano": [
        "Classify this support ticket as billing or shipping",
        "Classify the sentiment of this customer review",
        "Extract the email address from this message",
        "Extract the order number from this customer message",
        "Translate this sentence into French",
        "Translate this customer message into German",
        "Format these names as a JSON list",
        "What is the order status for order 1234",
    ],
    "frontier": [
        "Explain the trade-offs of microservices versus a monolith for our architecture",
        "Explain why our architecture cannot scale and propose a better design",
        "Design a migration plan for our database and justify each step",
        "Design a data model for our system and explain the trade-offs",
        "Analyze why this distributed system loses messages under load",
        "Analyze the root cause of this outage in our system",
        "Compare two caching strategies and recommend one for our architecture",
        "Review this proof and explain where the reasoning fails",
    ],
}

HELD_OUT = [
    ("Classify this ticket: billing or refund?", "nano"),
    ("Extract the phone number from this message", "nano"),
    ("Translate the following sentence into Spanish", "nano"),
    ("Explain the trade-offs of event sourcing for our architecture", "frontier"),
    ("Analyze why our system loses data under heavy load", "frontier"),
    ("Design a plan to migrate the database and justify it", "frontier"),
]


class CountingCallable:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, text: str) -> list[float]:
        self.calls.append(text)
        return bow(text)


class LangChainLike:
    """Duck-types langchain_core.embeddings.Embeddings."""

    def __init__(self) -> None:
        self.documents_calls = 0
        self.query_calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.documents_calls += 1
        return [bow(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.query_calls += 1
        return bow(text)


class LlamaIndexLike:
    """Duck-types llama_index.core.base.embeddings.base.BaseEmbedding (which is also callable on nodes)."""

    def __init__(self) -> None:
        self.batch_calls = 0
        self.text_calls = 0
        self.query_calls = 0

    def get_text_embedding_batch(self, texts: list[str], show_progress: bool = False) -> list[list[float]]:
        self.batch_calls += 1
        return [bow(t) for t in texts]

    def get_text_embedding(self, text: str) -> list[float]:
        self.text_calls += 1
        return bow(text)

    def get_query_embedding(self, query: str) -> list[float]:
        self.query_calls += 1
        return bow(query)

    def __call__(self, nodes: Any) -> Any:  # like TransformComponent: must not be mistaken for a str -> vector
        raise AssertionError("the node-transform __call__ must not be used")


def req(text: str, **kw: Any) -> RouteRequest:
    return RouteRequest(text=text, **kw)


# --- semantic ----------------------------------------------------------------------------------


def test_semantic_routes_held_out_prompts_to_the_right_tier() -> None:
    router = Router(TIERS, SemanticPolicy(ROUTES, bow))
    for text, expected in HELD_OUT:
        d = router.route(req(text))
        assert d.tier == expected, (text, d.reason)
        assert d.policy == "semantic"
        other = "frontier" if expected == "nano" else "nano"
        assert (
            d.reason
            == f"nearest examples: {expected} ({d.features[expected]:.2f}) vs {other} ({d.features[other]:.2f})"
        )
        assert d.score == d.features[expected] > d.features[other]
        assert "embed_ms" in d.features and d.features["embed_ms"] >= 0
        assert d.decision_s > 0


def test_score_is_the_mean_of_the_top_k_similarities() -> None:
    text = "Translate this sentence into French please"
    d1 = SemanticPolicy(ROUTES, bow, k=1).choose(req(text), None)  # type: ignore[arg-type]
    d5 = SemanticPolicy(ROUTES, bow, k=5).choose(req(text), None)  # type: ignore[arg-type]

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    sims = sorted((cos(bow(text), bow(e)) for e in ROUTES["nano"]), reverse=True)
    assert d1 is not None and d5 is not None
    assert d1.features["nano"] == pytest.approx(sims[0])
    assert d5.features["nano"] == pytest.approx(sum(sims) / 5)


def test_examples_are_embedded_exactly_once_across_many_decisions() -> None:
    fn = CountingCallable()
    policy = SemanticPolicy(ROUTES, fn)
    n_examples = sum(len(v) for v in ROUTES.values())
    assert fn.calls == [] and not policy.prepared  # lazy: nothing embedded at construction
    for i in range(25):
        policy.choose(req(f"Classify ticket {i} as billing or shipping"), None)  # type: ignore[arg-type]
    assert len(fn.calls) == n_examples + 25
    assert sorted(fn.calls[:n_examples]) == sorted(t for v in ROUTES.values() for t in v)

    lc = LangChainLike()
    policy = SemanticPolicy(ROUTES, lc).prepare()
    assert policy.prepared and lc.documents_calls == 1
    policy.prepare()
    for _ in range(10):
        policy.choose(req("Explain the trade-offs of caching"), None)  # type: ignore[arg-type]
    assert (lc.documents_calls, lc.query_calls) == (1, 10)


def test_lazy_preparation_is_thread_safe() -> None:
    lc = LangChainLike()
    policy = SemanticPolicy(ROUTES, lc)
    barrier = threading.Barrier(8)
    tiers: list[str] = []

    def worker() -> None:
        barrier.wait()
        d = policy.choose(req("Extract the email address from this note"), None)  # type: ignore[arg-type]
        tiers.append(d.tier if d else "none")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lc.documents_calls == 1 and lc.query_calls == 8 and tiers == ["nano"] * 8


def test_langchain_and_llamaindex_shaped_embedders_work() -> None:
    lc, li = LangChainLike(), LlamaIndexLike()
    for embed in (lc, li):
        router = Router(TIERS, SemanticPolicy(ROUTES, embed))
        assert [router.route(req(t)).tier for t, _ in HELD_OUT] == [e for _, e in HELD_OUT]
    assert (lc.documents_calls, lc.query_calls) == (1, len(HELD_OUT))
    assert (li.batch_calls, li.text_calls, li.query_calls) == (1, 0, len(HELD_OUT))
    assert SemanticPolicy(ROUTES, lc).embedder_kind == "langchain"
    assert SemanticPolicy(ROUTES, li).embedder_kind == "llamaindex"

    # batch=False: one call per example through the single-text method
    li2 = LlamaIndexLike()
    SemanticPolicy(ROUTES, li2, batch=False).prepare()
    assert (li2.batch_calls, li2.text_calls) == (0, 16)
    lc2 = LangChainLike()
    SemanticPolicy(ROUTES, lc2, batch=False).prepare()
    assert (lc2.documents_calls, lc2.query_calls) == (0, 16)


def test_real_langchain_fake_embeddings() -> None:
    embeddings = pytest.importorskip("langchain_core.embeddings")
    fake = embeddings.DeterministicFakeEmbedding(size=64)
    policy = SemanticPolicy(ROUTES, fake, k=1)
    d = Router(TIERS, policy).route(req(ROUTES["frontier"][2]))  # an example itself: similarity 1
    assert d.tier == "frontier" and d.score == pytest.approx(1.0)
    assert d.features["nano"] < 0.9


def test_real_llamaindex_mock_embedding() -> None:
    li = pytest.importorskip("llama_index.core.embeddings")
    mock = li.MockEmbedding(embed_dim=16)  # a constant vector for every text: every tier ties at 1.0
    d = SemanticPolicy(ROUTES, mock).choose(req("anything"), None)  # type: ignore[arg-type]
    assert d is not None and d.tier == "nano" and d.score == pytest.approx(1.0)  # ties go to the first listed tier


def test_min_similarity_gives_no_opinion_and_the_next_policy_decides() -> None:
    unrelated = "Sunny weather tomorrow, bring sunglasses"
    policy = SemanticPolicy(ROUTES, bow, min_similarity=0.25)
    assert policy.choose(req(unrelated), None) is None  # type: ignore[arg-type]
    assert policy.choose(req(HELD_OUT[0][0]), None).tier == "nano"  # type: ignore[arg-type,union-attr]

    router = Router(TIERS, policy, default="frontier")
    d = router.route(req(unrelated))
    assert (d.tier, d.policy) == ("frontier", "default")

    chained = Router(TIERS, SemanticPolicy(ROUTES, bow, min_similarity=0.25) | HeuristicPolicy(("nano", "frontier")))
    assert chained.route(req(unrelated)).policy == "heuristic"
    assert chained.route(req(HELD_OUT[3][0])).policy == "semantic"


def test_pure_python_fallback_matches_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numpy")
    with_numpy = SemanticPolicy(ROUTES, bow)
    results_np = [with_numpy.choose(req(t), None) for t, _ in HELD_OUT]  # type: ignore[arg-type]
    monkeypatch.setattr(semantic_module, "_np", None)
    pure = SemanticPolicy(ROUTES, bow)
    results_py = [pure.choose(req(t), None) for t, _ in HELD_OUT]  # type: ignore[arg-type]
    for a, b in zip(results_np, results_py):
        assert a is not None and b is not None and a.tier == b.tier
        for tier in ROUTES:
            assert a.features[tier] == pytest.approx(b.features[tier], abs=1e-12)


def test_empty_text_and_zero_vectors_have_no_opinion() -> None:
    fn = CountingCallable()
    policy = SemanticPolicy(ROUTES, fn).prepare()
    calls = len(fn.calls)
    assert policy.choose(req("   "), None) is None  # type: ignore[arg-type]
    assert len(fn.calls) == calls  # no embedding call for an empty request
    assert policy.choose(req("the of and"), None) is None  # type: ignore[arg-type] # only stopwords: a zero vector


def test_an_embedder_failure_while_deciding_is_logged_and_leaves_no_opinion(caplog: pytest.LogCaptureFixture) -> None:
    class Flaky(LangChainLike):
        def embed_query(self, text: str) -> list[float]:
            raise TimeoutError("embedding service timed out")

    router = Router(TIERS, SemanticPolicy(ROUTES, Flaky()) | StaticPolicy({}, default="frontier"))
    with caplog.at_level(logging.WARNING, logger="agentcost.routing"):
        d = router.route(req("Classify this ticket"))
    assert (d.tier, d.policy) == ("frontier", "static")
    assert "embedding service timed out" in caplog.text

    class Down(LangChainLike):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise ConnectionError("down")

    with pytest.raises(ConnectionError):  # eager prepare() surfaces the error
        SemanticPolicy(ROUTES, Down()).prepare()


@pytest.mark.parametrize(
    ("routes", "embed", "kw", "match"),
    [
        ({}, bow, {}, "non-empty mapping"),
        ([("nano", ["x"])], bow, {}, "non-empty mapping"),
        ({"nano": []}, bow, {}, "no example texts"),
        ({"nano": "classify this"}, bow, {}, "list of example texts"),
        ({"nano": ["ok", "  "]}, bow, {}, "non-empty strings"),
        ({"nano": ["ok"]}, object(), {}, "embed= must be"),
        ({"nano": ["ok"]}, bow, {"k": 0}, "k must be"),
        ({"nano": ["ok"]}, bow, {"min_similarity": 1.5}, "min_similarity"),
    ],
)
def test_semantic_config_errors(routes: Any, embed: Any, kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        SemanticPolicy(routes, embed, **kw)


def test_semantic_bad_vectors_are_configuration_errors() -> None:
    sizes = iter([8, 8, 16])
    with pytest.raises(ConfigurationError, match="differ in size"):
        SemanticPolicy({"a": ["x", "y"], "b": ["z"]}, lambda t: [1.0] * next(sizes)).prepare()
    with pytest.raises(ConfigurationError, match="zero"):
        SemanticPolicy({"a": ["x"]}, lambda t: [0.0, 0.0]).prepare()

    class Short(LangChainLike):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [bow(texts[0])]

    with pytest.raises(ConfigurationError, match="1 vectors for 16 examples"):
        SemanticPolicy(ROUTES, Short()).prepare()
    policy = SemanticPolicy(ROUTES, lambda t: bow(t) if t in ROUTES["nano"] or t in ROUTES["frontier"] else [1.0, 2.0])
    with pytest.raises(ConfigurationError, match="2 dimensions"):
        policy.choose(req("hello"), None)  # type: ignore[arg-type]


def test_router_checks_semantic_tier_names() -> None:
    with pytest.raises(ConfigurationError):
        Router(TIERS, SemanticPolicy({"nano": ["x"], "reasoning": ["y"]}, bow))


# --- cascade -----------------------------------------------------------------------------------


class Refund(BaseModel):
    eligible: bool
    days: int


def test_cascade_chooses_the_first_listed_tier_and_names_the_order() -> None:
    policy = CascadePolicy(("nano", "mid", "frontier"), validator=lambda t: True)
    d = policy.choose(req("anything"), None)  # type: ignore[arg-type]
    assert (d.tier, d.reason, d.policy) == ("nano", "cascade: try nano first", "cascade")
    assert list(policy.tier_names()) == ["nano", "mid", "frontier"]
    assert [policy.next_tier(t) for t in ("nano", "mid", "frontier", "other")] == ["mid", "frontier", None, None]
    assert policy.max_escalations == 1


def test_callable_validator_accepts_and_rejects_with_a_reason() -> None:
    policy = CascadePolicy(validator=lambda text: "refund" in text or "no refund mentioned")
    assert policy.validate("You can get a refund.") == (True, "validator accepted the answer")
    assert policy.validate("I am not sure.") == (False, "no refund mentioned")
    assert CascadePolicy(validator=lambda t: None).validate("x")[0] is True
    assert CascadePolicy(validator=lambda t: False).validate("x") == (False, "validator rejected the answer")
    assert CascadePolicy(validator=lambda t: (False, "too short")).validate("x") == (False, "too short")

    def boom(text: str) -> bool:
        raise ValueError("cannot parse")

    ok, why = CascadePolicy(validator=boom).validate("x")
    assert not ok and "ValueError" in why and "cannot parse" in why


def test_pydantic_schema_validator() -> None:
    policy = CascadePolicy(("nano", "frontier"), Refund)
    assert policy.validate('{"eligible": true, "days": 30}') == (True, "answer parses as Refund")
    assert policy.validate('Sure!\n```json\n{"eligible": false, "days": 0}\n```\nAnything else?')[0] is True
    assert policy.validate('Here it is: {"eligible": true, "days": 14}. Thanks.')[0] is True
    ok, why = policy.validate('{"eligible": true}')
    assert not ok and "Refund" in why and "days" in why
    ok, why = policy.validate('```json\n{"eligible": "maybe", "days": "x"}\n```')
    assert not ok and "(+1 more)" in why
    assert policy.validate("I think you are eligible.")[0] is False
    assert policy.validate("")[0] is False


def test_logprob_confidence_validator() -> None:
    policy = CascadePolicy(("nano", "frontier"), min_confidence=0.8)
    ok, why = policy.validate("answer", logprobs=[-0.1, -0.2])
    assert ok and why == f"confidence {math.exp(-0.15):.2f} >= 0.80"
    ok, why = policy.validate("answer", logprobs=[-1.0, -2.0])
    assert not ok and why == f"low confidence {math.exp(-1.5):.2f} < 0.80"
    assert CascadePolicy.confidence([-0.5, -0.5, -0.5]) == pytest.approx(math.exp(-0.5))
    ok, why = policy.validate("answer")
    assert ok and "no logprobs" in why

    class LangChainMessage:  # AIMessage.response_metadata as OpenAI fills it
        response_metadata = {
            "logprobs": {"content": [{"token": "a", "logprob": -2.0}, {"token": "b", "logprob": -3.0}]}
        }

    assert policy.validate("a b", raw=LangChainMessage())[0] is False

    class LP:
        def __init__(self, logprob: float) -> None:
            self.logprob = logprob

    class LlamaIndexResponse:  # ChatResponse.logprobs: per token, a list of top logprobs
        logprobs = [[LP(-0.01), LP(-5.0)], [LP(-0.02)]]

    ok, why = policy.validate("x", raw=LlamaIndexResponse())
    assert ok and why == f"confidence {math.exp(-0.015):.2f} >= 0.80"
    # given logprobs win over raw
    assert policy.validate("x", logprobs=[-0.01], raw=LangChainMessage())[0] is True


def test_validator_and_confidence_combine() -> None:
    policy = CascadePolicy(("nano", "frontier"), Refund, min_confidence=0.5)
    assert policy.validate('{"eligible": true, "days": 1}', logprobs=[-3.0])[0] is False
    assert policy.validate('{"eligible": true}', logprobs=[-0.01])[0] is False
    ok, why = policy.validate('{"eligible": true, "days": 1}', logprobs=[-0.01])
    assert ok and "Refund" in why and "confidence" in why


def _run_cascade(policy: CascadePolicy, answers: dict[str, str], tiers: dict[str, str]) -> list[str]:
    """The adapters' loop: route, call, validate, escalate while allowed."""
    tier = Router(tiers, policy).route(req("q")).tier
    called, escalations = [tier], 0
    while True:
        ok, _ = policy.validate(answers[tier])
        nxt = policy.next_tier(tier)
        if ok or nxt is None or escalations >= policy.max_escalations:
            return called
        tier, escalations = nxt, escalations + 1
        called.append(tier)


def test_max_escalations_limits_the_number_of_escalations() -> None:
    tiers = {"nano": "gpt-4.1-nano", "mid": "gpt-4.1-mini", "frontier": "gpt-4.1"}
    bad = {"nano": "no", "mid": "no", "frontier": "no"}
    names = ("nano", "mid", "frontier")
    reject = lambda t: t != "no" or "said no"  # noqa: E731
    assert _run_cascade(CascadePolicy(names, reject), bad, tiers) == ["nano", "mid"]
    assert _run_cascade(CascadePolicy(names, reject, max_escalations=2), bad, tiers) == ["nano", "mid", "frontier"]
    assert _run_cascade(CascadePolicy(names, reject, max_escalations=5), bad, tiers) == ["nano", "mid", "frontier"]
    assert _run_cascade(CascadePolicy(names, reject, max_escalations=0), bad, tiers) == ["nano"]
    good = {"nano": "yes", "mid": "no", "frontier": "no"}
    assert _run_cascade(CascadePolicy(names, reject, max_escalations=2), good, tiers) == ["nano"]


def test_cascade_composes_with_other_policies() -> None:
    cascade = CascadePolicy(("nano", "frontier"), validator=lambda t: True)
    router = Router(TIERS, StaticPolicy({"summarize": "frontier"}) | cascade)
    d = router.route(req("x", step="summarize"))
    assert (d.tier, d.policy) == ("frontier", "static")
    assert cascade.next_tier(d.tier) is None  # already at the top: nothing to escalate to
    d = router.route(req("x", step="classify"))
    assert (d.tier, d.policy, d.reason) == ("nano", "cascade", "cascade: try nano first")

    # cascade first: it always has an opinion, so a later chooser never decides
    router = Router(TIERS, cascade | HeuristicPolicy(("nano", "frontier")))
    hard = "Compare the trade-offs of event sourcing versus CRUD and design a migration plan step by step"
    assert router.route(req(hard)).policy == "cascade"
    # constraints after it still apply
    capped = Router(TIERS, [StaticPolicy({}, default="frontier"), cascade, UserTierCap({"free": "nano"})])
    d = capped.route(req("x", user_tier="free"))
    assert d.tier == "nano" and d.adjustments


def test_escalation_reason() -> None:
    text = "cascade: nano answer rejected (no refund mentioned); escalated to frontier"
    assert escalation_reason("no refund mentioned", "nano", "frontier") == text
    assert CascadePolicy(validator=bool).escalation_reason("no refund mentioned", "nano", "frontier") == text


@pytest.mark.parametrize(
    ("args", "kw", "match"),
    [
        ((("nano",), bool), {}, "at least two tiers"),
        (("nano", bool), {}, "sequence of tier names"),
        ((("nano", "nano"), bool), {}, "distinct"),
        ((("nano", "frontier"),), {}, "needs a validator"),
        ((("nano", "frontier"), 42), {}, "validator must be"),
        ((("nano", "frontier"),), {"min_confidence": 0}, "min_confidence"),
        ((("nano", "frontier"),), {"min_confidence": 1.5}, "min_confidence"),
        ((("nano", "frontier"), bool), {"max_escalations": -1}, "max_escalations"),
    ],
)
def test_cascade_config_errors(args: tuple[Any, ...], kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        CascadePolicy(*args, **kw)
