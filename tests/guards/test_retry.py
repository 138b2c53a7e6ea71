"""Retry classification on the real openai / anthropic exception types (built the way the SDKs
build them, and raised by the real clients over a mock transport), and the retry policy."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pydantic
import pytest
from agentcost_core.errors import ConfigurationError
from agentcost_core.guards.retry import RetryAction, RetryDecision, RetryPolicy, classify, repair_feedback
from agentcost_core.halts import AgentHalted, TerminationReason

BACKOFF, REPAIR, FAIL = RetryAction.BACKOFF, RetryAction.REPAIR, RetryAction.FAIL

OPENAI_URL = "https://api.openai.com/v1/chat/completions"
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"


def oa_status(cls: type[openai.APIStatusError], status: int, headers: dict[str, str] | None = None, body: Any = None):
    request = httpx.Request("POST", OPENAI_URL)
    response = httpx.Response(status, request=request, headers=headers or {})
    return cls(f"Error code: {status}", response=response, body=body)


def an_status(
    cls: type[anthropic.APIStatusError], status: int, headers: dict[str, str] | None = None, body: Any = None
):
    request = httpx2.Request("POST", ANTHROPIC_URL)
    response = httpx2.Response(status, request=request, headers=headers or {})
    return cls(f"Error code: {status}", response=response, body=body)


def anthropic_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


# -- classification: openai ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "status", "action"),
    [
        (openai.RateLimitError, 429, BACKOFF),
        (openai.InternalServerError, 500, BACKOFF),
        (openai.InternalServerError, 503, BACKOFF),
        (openai.BadRequestError, 400, REPAIR),
        (openai.UnprocessableEntityError, 422, REPAIR),
        (openai.AuthenticationError, 401, FAIL),
        (openai.PermissionDeniedError, 403, FAIL),
        (openai.NotFoundError, 404, FAIL),
        (openai.ConflictError, 409, FAIL),
    ],
)
def test_openai_status_errors(cls: type[openai.APIStatusError], status: int, action: RetryAction) -> None:
    decision = classify(oa_status(cls, status))
    assert decision.action is action
    assert f"openai.{cls.__name__}" in decision.reason and f"HTTP {status}" in decision.reason


def test_openai_timeout_and_connection_errors() -> None:
    request = httpx.Request("POST", OPENAI_URL)
    assert classify(openai.APITimeoutError(request=request)).action is BACKOFF
    decision = classify(openai.APIConnectionError(request=request))
    assert decision.action is BACKOFF and "connection" in decision.reason


def test_openai_insufficient_quota_fails_fast() -> None:
    body = {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}
    decision = classify(oa_status(openai.RateLimitError, 429, body=body))
    assert decision.action is FAIL and "insufficient_quota" in decision.reason


# -- classification: anthropic (httpx2) ------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "status", "action"),
    [
        (anthropic.RateLimitError, 429, BACKOFF),
        (anthropic.InternalServerError, 500, BACKOFF),
        (anthropic.OverloadedError, 529, BACKOFF),
        (anthropic.ServiceUnavailableError, 503, BACKOFF),
        (anthropic.RequestTimeoutError, 408, BACKOFF),
        (anthropic.BadRequestError, 400, REPAIR),
        (anthropic.UnprocessableEntityError, 422, REPAIR),
        (anthropic.AuthenticationError, 401, FAIL),
        (anthropic.PermissionDeniedError, 403, FAIL),
        (anthropic.NotFoundError, 404, FAIL),
    ],
)
def test_anthropic_status_errors(cls: type[anthropic.APIStatusError], status: int, action: RetryAction) -> None:
    decision = classify(an_status(cls, status, body=anthropic_error("some_error", "message")))
    assert decision.action is action
    assert f"anthropic.{cls.__name__}" in decision.reason


def test_anthropic_timeout_and_connection_errors() -> None:
    request = httpx2.Request("POST", ANTHROPIC_URL)
    assert classify(anthropic.APITimeoutError(request=request)).action is BACKOFF
    assert classify(anthropic.APIConnectionError(request=request)).action is BACKOFF


# -- retry-after -----------------------------------------------------------------------------


def test_retry_after_seconds_and_ms() -> None:
    assert classify(oa_status(openai.RateLimitError, 429, {"retry-after": "7"})).retry_after == 7.0
    assert classify(oa_status(openai.RateLimitError, 429, {"retry-after": "1.5"})).retry_after == 1.5
    both = {"retry-after-ms": "250", "retry-after": "9"}
    assert classify(an_status(anthropic.RateLimitError, 429, both)).retry_after == 0.25  # ms is more precise
    assert classify(oa_status(openai.RateLimitError, 429)).retry_after is None
    assert classify(oa_status(openai.RateLimitError, 429, {"retry-after": "soon"})).retry_after is None


def test_retry_after_http_date() -> None:
    when = datetime(2025, 10, 21, 7, 28, 0, tzinfo=timezone.utc)
    headers = {"retry-after": format_datetime(when, usegmt=True)}  # "Tue, 21 Oct 2025 07:28:00 GMT"
    decision = classify(an_status(anthropic.OverloadedError, 529, headers), now=lambda: when.timestamp() - 12)
    assert decision.action is BACKOFF and decision.retry_after == 12.0
    past = classify(oa_status(openai.InternalServerError, 503, headers), now=lambda: when.timestamp() + 60)
    assert past.retry_after == 0.0


def test_retry_after_only_for_backoff() -> None:
    assert classify(oa_status(openai.BadRequestError, 400, {"retry-after": "5"})).retry_after is None


# -- the real SDK clients over a mock transport ----------------------------------------------


def openai_client(handler: Callable[[httpx.Request], httpx.Response]) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="x",
        base_url="http://test",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )


def anthropic_client(handler: Callable[[httpx2.Request], httpx2.Response]) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="x", max_retries=0, http_client=httpx2.Client(transport=httpx2.MockTransport(handler))
    )


OPENAI_429 = {
    "error": {
        "message": "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3, Used 3, Requested 1.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}
OPENAI_OK = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1730000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hello"}, "logprobs": None, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9},
}


def openai_chat(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def anthropic_message(client: anthropic.Anthropic) -> Any:
    return client.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])


def test_real_openai_client_429_with_retry_after() -> None:
    client = openai_client(lambda request: httpx.Response(429, headers={"retry-after": "7"}, json=OPENAI_429))
    with pytest.raises(openai.RateLimitError) as info:
        openai_chat(client)
    assert classify(info.value) == RetryDecision(BACKOFF, "rate limited (openai.RateLimitError, HTTP 429)", 7.0)


def test_real_anthropic_client_overloaded_and_rate_limited() -> None:
    overloaded = anthropic_client(
        lambda request: httpx2.Response(529, json=anthropic_error("overloaded_error", "Overloaded"))
    )
    with pytest.raises(anthropic.OverloadedError) as info:
        anthropic_message(overloaded)
    decision = classify(info.value)
    assert decision.action is BACKOFF and "HTTP 529" in decision.reason and decision.retry_after is None

    limited = anthropic_client(
        lambda request: httpx2.Response(
            429,
            headers={"retry-after": "20"},
            json=anthropic_error(
                "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"
            ),
        )
    )
    with pytest.raises(anthropic.RateLimitError) as info2:
        anthropic_message(limited)
    assert classify(info2.value) == RetryDecision(BACKOFF, "rate limited (anthropic.RateLimitError, HTTP 429)", 20.0)


def test_real_anthropic_spend_limit_fails_fast() -> None:
    body = anthropic_error("rate_limit_error", "Your organization has reached its spend limit.")
    body["error"]["details"] = {"error_code": "enforced_spend_limit_reached"}
    client = anthropic_client(lambda request: httpx2.Response(429, headers={"retry-after": "60"}, json=body))
    with pytest.raises(anthropic.RateLimitError) as info:
        anthropic_message(client)
    decision = classify(info.value)
    assert decision.action is FAIL and "enforced_spend_limit_reached" in decision.reason


def test_real_anthropic_auth_error() -> None:
    client = anthropic_client(
        lambda request: httpx2.Response(401, json=anthropic_error("authentication_error", "invalid x-api-key"))
    )
    with pytest.raises(anthropic.AuthenticationError) as info:
        anthropic_message(client)
    assert classify(info.value).action is FAIL


# -- classification: everything else ---------------------------------------------------------


class OutputParserException(ValueError):
    """Named like LangChain's, defined here: recognised by name, langchain never imported."""


class StrictParserError(OutputParserException):
    pass


class HTTPishError(Exception):
    def __init__(self, status_code: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code
        self.response = type("R", (), {"headers": headers or {}, "status_code": status_code})()


def pydantic_error() -> pydantic.ValidationError:
    class Answer(pydantic.BaseModel):
        score: int

    try:
        Answer.model_validate({"score": "high"})
    except pydantic.ValidationError as e:
        return e
    raise AssertionError("unreachable")


def json_error() -> json.JSONDecodeError:
    try:
        json.loads('{"answer": ')
    except json.JSONDecodeError as e:
        return e
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("make", "action"),
    [
        (lambda: TimeoutError("read timed out"), BACKOFF),
        (lambda: asyncio.TimeoutError(), BACKOFF),
        (lambda: ConnectionResetError("reset by peer"), BACKOFF),
        (lambda: httpx.ConnectTimeout("timed out"), BACKOFF),
        (lambda: httpx2.ReadError("read failed"), BACKOFF),
        (lambda: httpx.UnsupportedProtocol("ftp"), FAIL),
        (json_error, REPAIR),
        (pydantic_error, REPAIR),
        (lambda: OutputParserException("could not parse"), REPAIR),
        (lambda: StrictParserError("could not parse"), REPAIR),
        (lambda: HTTPishError(429, {"Retry-After": "3"}), BACKOFF),
        (lambda: HTTPishError(502), BACKOFF),
        (lambda: HTTPishError(408), BACKOFF),
        (lambda: HTTPishError(400), REPAIR),
        (lambda: HTTPishError(422), REPAIR),
        (lambda: HTTPishError(401), FAIL),
        (lambda: HTTPishError(403), FAIL),
        (lambda: HTTPishError(404), FAIL),
        (lambda: KeyError("x"), FAIL),
        (lambda: RuntimeError("unknown"), FAIL),
        (lambda: AgentHalted(TerminationReason.BUDGET, "over budget"), FAIL),
    ],
)
def test_other_exceptions(make: Callable[[], BaseException], action: RetryAction) -> None:
    assert classify(make()).action is action


def test_real_langchain_output_parser_exception() -> None:
    exceptions = pytest.importorskip("langchain_core.exceptions")
    assert classify(exceptions.OutputParserException("Invalid json output: {")).action is REPAIR


def test_status_code_fallback_reads_plain_dict_headers_case_insensitively() -> None:
    assert classify(HTTPishError(429, {"Retry-After": "3"})).retry_after == 3.0


def test_wrapped_errors_are_classified_by_their_cause() -> None:
    try:
        try:
            raise oa_status(openai.RateLimitError, 429, {"retry-after": "2"})
        except openai.RateLimitError as inner:
            raise RuntimeError("tool wrapper failed") from inner
    except RuntimeError as outer:
        decision = classify(outer)
    assert decision.action is BACKOFF and decision.retry_after == 2.0
    assert "raised as builtins.RuntimeError" in decision.reason


def test_unknown_reason_names_the_class() -> None:
    decision = classify(KeyError("x"))
    assert decision == RetryDecision(FAIL, "unknown error, not retried (builtins.KeyError)", None)


def test_classification_without_the_sdks_imported() -> None:
    code = textwrap.dedent(
        """
        import sys
        from agentcost_core.guards.retry import classify, RetryAction
        class E(Exception):
            status_code = 529
        assert classify(E()).action is RetryAction.BACKOFF
        assert classify(TimeoutError()).action is RetryAction.BACKOFF
        assert classify(ValueError()).action is RetryAction.FAIL
        loaded = {"openai", "anthropic", "httpx", "httpx2", "langchain_core"} & set(sys.modules)
        assert not loaded, loaded
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# -- RetryPolicy.delay -----------------------------------------------------------------------


def test_delay_is_exponential_full_jitter_capped() -> None:
    half = RetryPolicy(base_delay=0.5, max_delay=30.0, rand=lambda: 0.5)
    assert [half.delay(n) for n in (1, 2, 3, 4)] == [0.25, 0.5, 1.0, 2.0]
    full = RetryPolicy(base_delay=0.5, max_delay=30.0, rand=lambda: 1.0)
    assert full.delay(7) == 30.0  # 0.5 * 64 = 32, capped
    assert full.delay(10_000) == 30.0  # no overflow
    assert RetryPolicy(rand=lambda: 0.0).delay(3) == 0.0


def test_delay_never_below_retry_after_and_retry_after_may_exceed_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0, rand=lambda: 0.5)
    assert policy.delay(1, retry_after=7.0) == 7.0
    assert policy.delay(5, retry_after=1.0) == 4.0  # jitter above retry_after stands
    assert policy.delay(1, retry_after=120.0) == 120.0


# -- RetryPolicy.call / acall ----------------------------------------------------------------


def test_call_retries_real_openai_429_honouring_retry_after() -> None:
    responses = iter(
        [
            httpx.Response(429, headers={"retry-after": "7"}, json=OPENAI_429),
            httpx.Response(503, json={"error": {"message": "overloaded", "type": "server_error"}}),
            httpx.Response(200, json=OPENAI_OK),
        ]
    )
    client = openai_client(lambda request: next(responses))
    sleeps: list[float] = []
    policy = RetryPolicy(sleep=sleeps.append, rand=lambda: 0.5)
    result = policy.call(openai_chat, client)
    assert result.choices[0].message.content == "hello"
    assert sleeps == [7.0, 0.5]  # retry-after honoured, then jittered backoff for attempt 2


def test_call_gives_up_after_max_attempts() -> None:
    calls = 0

    def overloaded() -> None:
        nonlocal calls
        calls += 1
        raise an_status(anthropic.OverloadedError, 529, body=anthropic_error("overloaded_error", "Overloaded"))

    sleeps: list[float] = []
    with pytest.raises(anthropic.OverloadedError):
        RetryPolicy(max_attempts=4, sleep=sleeps.append, rand=lambda: 1.0).call(overloaded)
    assert calls == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_auth_fails_fast_with_zero_sleeps() -> None:
    requests: list[httpx.Request] = []

    def unauthorized(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(401, json={"error": {"message": "Incorrect API key", "code": "invalid_api_key"}})

    sleeps: list[float] = []
    with pytest.raises(openai.AuthenticationError):
        RetryPolicy(sleep=sleeps.append).call(openai_chat, openai_client(unauthorized))
    assert sleeps == []
    assert len(requests) == 1


def test_call_reraises_repair_errors_without_retrying() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def bad() -> None:
        calls.append(1)
        raise json_error()

    with pytest.raises(json.JSONDecodeError):
        RetryPolicy(sleep=sleeps.append).call(bad)
    assert calls == [1] and sleeps == []


def test_max_attempts_one_means_no_retry() -> None:
    sleeps: list[float] = []
    with pytest.raises(TimeoutError):
        RetryPolicy(max_attempts=1, sleep=sleeps.append).call(lambda: (_ for _ in ()).throw(TimeoutError()))
    assert sleeps == []


async def test_acall_uses_the_async_sleep() -> None:
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    outcomes: list[BaseException | str] = [TimeoutError("slow"), ConnectionError("reset"), "done"]

    async def flaky(suffix: str) -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome + suffix

    def no_sync_sleep(seconds: float) -> None:
        raise AssertionError("acall must not use the blocking sleep")

    policy = RetryPolicy(sleep=no_sync_sleep, asleep=record, rand=lambda: 1.0)
    assert await policy.acall(flaky, "!") == "done!"
    assert sleeps == [0.5, 1.0]


# -- repair ----------------------------------------------------------------------------------


def test_call_with_repair_feeds_the_error_back_once() -> None:
    seen: list[str | None] = []

    def ask_model(feedback: str | None) -> dict[str, Any]:
        seen.append(feedback)
        if feedback is None:
            return json.loads('{"answer": ')  # the model's broken output
        return {"answer": 42}

    sleeps: list[float] = []
    assert RetryPolicy(sleep=sleeps.append).call_with_repair(ask_model) == {"answer": 42}
    assert seen[0] is None and len(seen) == 2
    assert "JSONDecodeError" in seen[1] and "Expecting value" in seen[1]
    assert sleeps == []


def test_call_with_repair_gives_up_after_repair_attempts() -> None:
    seen: list[str | None] = []

    def always_invalid(feedback: str | None) -> None:
        seen.append(feedback)
        raise pydantic_error()

    with pytest.raises(pydantic.ValidationError):
        RetryPolicy(repair_attempts=1).call_with_repair(always_invalid)
    assert len(seen) == 2
    assert "score" in seen[1] and "ValidationError" in seen[1]
    seen.clear()
    with pytest.raises(pydantic.ValidationError):
        RetryPolicy(repair_attempts=0).call_with_repair(always_invalid)
    assert seen == [None]


def test_call_with_repair_backs_off_on_transient_errors_and_keeps_feedback() -> None:
    seen: list[str | None] = []
    outcomes: list[BaseException | str] = [
        oa_status(openai.BadRequestError, 400, body={"message": "tool_calls[0].arguments is not valid JSON"}),
        oa_status(openai.RateLimitError, 429, {"retry-after": "3"}),
        "fixed",
    ]

    def step(feedback: str | None) -> str:
        seen.append(feedback)
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    sleeps: list[float] = []
    assert RetryPolicy(sleep=sleeps.append, rand=lambda: 0.0).call_with_repair(step) == "fixed"
    assert seen[0] is None and seen[1] is not None and seen[2] == seen[1]  # the retry keeps the feedback
    assert "BadRequestError" in seen[1]
    assert sleeps == [3.0]


def test_call_with_repair_fails_fast_on_auth() -> None:
    seen: list[str | None] = []

    def step(feedback: str | None) -> None:
        seen.append(feedback)
        raise an_status(anthropic.AuthenticationError, 401, body=anthropic_error("authentication_error", "bad key"))

    sleeps: list[float] = []
    with pytest.raises(anthropic.AuthenticationError):
        RetryPolicy(sleep=sleeps.append).call_with_repair(step)
    assert seen == [None] and sleeps == []


async def test_acall_with_repair() -> None:
    seen: list[str | None] = []

    async def step(feedback: str | None) -> str:
        seen.append(feedback)
        if feedback is None:
            raise OutputParserException("Could not parse LLM output: `I think the answer is`")
        return "parsed"

    assert await RetryPolicy().acall_with_repair(step) == "parsed"
    assert seen[0] is None and "Could not parse LLM output" in (seen[1] or "")


def test_repair_feedback_is_bounded() -> None:
    text = repair_feedback(ValueError("y" * 10_000))
    assert text.startswith("Your previous attempt could not be used: ValueError: yyy")
    assert len(text) < 2300


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 2.0}, "max_attempts"),
        ({"repair_attempts": -1}, "repair_attempts"),
        ({"base_delay": -0.1}, "base_delay"),
        ({"max_delay": float("inf")}, "max_delay"),
        ({"base_delay": 5, "max_delay": 1}, "max_delay"),
        ({"sleep": None}, "sleep"),
        ({"rand": 0.5}, "rand"),
    ],
)
def test_bad_configuration(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        RetryPolicy(**kwargs)


def test_delay_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="1-based"):
        RetryPolicy().delay(0)
