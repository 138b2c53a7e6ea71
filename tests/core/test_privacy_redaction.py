"""agentcost_core.privacy: URLs, free text, fingerprints and error descriptions."""

from __future__ import annotations

import httpx
import openai
import pytest

from agentcost_core.privacy import describe_error, fingerprint, private_guard_details, redact_text, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:s3cr%40t@db.example.com:5432/x", "postgresql://app:***@db.example.com:5432/x"),
        (
            "postgresql://db/x?user=app&password=pw&sslmode=require",
            "postgresql://db/x?user=app&password=***&sslmode=require",
        ),
        ("postgres://app:pw@db/x?sslpassword=k", "postgres://app:***@db/x?sslpassword=***"),
        ("redis://:hunter2@127.0.0.1:6379/4", "redis://:***@127.0.0.1:6379/4"),
        ("rediss://default:pw@cache:6380/0?ssl_cert_reqs=none", "rediss://default:***@cache:6380/0?ssl_cert_reqs=none"),
        (
            "https://u:p@hooks.example.com/x?token=abc&channel=ops#f",
            "https://u:***@hooks.example.com/x?token=***&channel=ops#f",
        ),
        ("http://host/kill?api_key=abc&Access-Token=def", "http://host/kill?api_key=***&Access-Token=***"),
        ("sqlite:///ledger.db?password=z", "sqlite:///ledger.db?password=***"),
        ("postgresql://app:pa/ss#w@db/x", "postgresql://app:***@db/x"),  # unencoded / and # in the password
        ("redis://127.0.0.1:6379/4", "redis://127.0.0.1:6379/4"),
        ("sqlite:///.agentcost/ledger.db", "sqlite:///.agentcost/ledger.db"),
        ("memory://", "memory://"),
        ("https://host/p?email=a@b.com", "https://host/p?email=a@b.com"),  # an "@" in the query is not user info
    ],
)
def test_redact_url_hides_passwords_and_keeps_where_it_points(url, shown):
    assert redact_url(url) == shown


def test_redact_url_leaves_what_is_not_a_string():
    assert redact_url(None) is None


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Incorrect API key provided: sk-proj-abcDEF1234567890xyz. Find it at …", "sk-proj-abcDEF1234567890xyz"),
        ("invalid x-api-key sk-ant-api03-AAAAbbbbCCCCdddd", "sk-ant-api03-AAAAbbbbCCCCdddd"),
        ("key=AIzaSyA1234567890abcdefghijklmnopq rejected", "AIzaSyA1234567890abcdefghijklmnopq"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
        ("{'Authorization': 'Basic dXNlcjpwYXNz'}", "dXNlcjpwYXNz"),
        ("headers x-api-key: opaque-value-123; next", "opaque-value-123"),
        ("mail alice.smith@example.com about it", "alice.smith@example.com"),
        ("could not connect to postgresql://app:hunter2@db/x", "hunter2"),
        ("host=db user=app password=hunter2 dbname=x", "hunter2"),
        ('{"client_secret": "abc123def"}', "abc123def"),
    ],
)
def test_redact_text_removes_keys_tokens_passwords_and_emails(text, secret):
    redacted = redact_text(text)
    assert secret not in redacted and "***" in redacted


def test_redact_text_keeps_ordinary_text():
    text = "max_tokens=5 is too small for 1200 input tokens (context window 128000)"
    assert redact_text(text) == text


def test_fingerprint_is_stable_short_and_opaque():
    a = fingerprint({"query": "where is my order", "n": [1, 2]})
    assert a == fingerprint({"n": [1, 2], "query": "where is my order"})  # key order aside
    assert a != fingerprint({"query": "where is my order?", "n": [1, 2]})
    assert a.startswith("sha256:") and len(a) == len("sha256:") + 12 and "order" not in a
    assert fingerprint(object()).startswith("sha256:")  # anything at all, never an error


def _openai_error(status: int, message: str) -> openai.APIStatusError:
    def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"message": message, "type": "invalid_request_error"}})

    client = openai.OpenAI(
        api_key="sk-test", max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(server))
    )
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    return raised.value


def test_describe_error_keeps_class_and_status_unless_asked_for_the_message():
    error = _openai_error(401, "Incorrect API key provided: sk-proj-PLANTED1234567890.")
    assert describe_error(error) == "AuthenticationError (401)"
    kept = describe_error(error, keep_message=True)
    assert kept.startswith("AuthenticationError (401): Error code: 401") and "PLANTED" not in kept
    assert describe_error(_openai_error(400, "bad prompt")) == "BadRequestError (400)"
    assert describe_error(RuntimeError("provider down")) == "RuntimeError"
    assert describe_error("Boom: mail bob@example.com") == "Boom: mail ***@***"
    assert describe_error(None) is None
    assert len(describe_error(RuntimeError("x" * 5000), keep_message=True)) == 2000


def test_guard_details_keep_fingerprints_unless_prompt_logging_is_on():
    args = '{"query":"my secret question"}'
    details = {"tool": "search", "args": args, "message": f"calling `search` with the same arguments ({args})"}
    private = private_guard_details(details)
    assert private["args"] == fingerprint(args) and "secret question" not in private["message"]
    assert fingerprint(args) in private["message"]
    assert private_guard_details(details, log_prompts=True) == details
    breaker = {"message": "Tool 'x' is temporarily unavailable: it failed 2 times in a row (last error: "
                          "ValueError: refused my secret question). It may be retried in about 60 s."}  # fmt: skip
    assert private_guard_details(breaker)["message"].count("(last error: ValueError).") == 1
    assert "secret question" in private_guard_details(breaker, log_prompts=True)["message"]
