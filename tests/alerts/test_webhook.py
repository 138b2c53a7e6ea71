"""WebhookSink against a local HTTP server: Slack-compatible JSON, retries with backoff after
failures, the URL never in reprs or logs, and a hung server never blocks a call."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agentcost_core import Budget, BudgetEnforcer, ConfigurationError
from agentcost_core.alerts import Alert, WebhookSink
from agentcost_core.budgets import MemoryStore, ScopeContext
from agentcost_core.usage import Usage


class Hook:
    """A local webhook: answers 503 to the first ``fail`` posts, or holds every post until released."""

    def __init__(self, *, fail: int = 0, hang: bool = False) -> None:
        self.fail, self.hang = fail, hang
        self.bodies: list[dict] = []
        self.attempts = 0
        self.release = threading.Event()
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with hook.lock:
                    hook.attempts += 1
                    failing = hook.attempts <= hook.fail
                if hook.hang:
                    hook.release.wait(10)
                if failing:
                    self.send_response(503)
                    self.end_headers()
                    return
                with hook.lock:
                    hook.bodies.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/B0/s3cr3t-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook_factory():  # type: ignore[no-untyped-def]
    made: list[Hook] = []

    def make(**kw) -> Hook:  # type: ignore[no-untyped-def]
        made.append(Hook(**kw))
        return made[-1]

    yield make
    for h in made:
        h.close()


ALERT = Alert(kind="anomaly.spike", severity="error", message="one call cost $1.20, 12.0× its average",
              attribution={"agent_id": "support-bot", "feature": "refunds"}, value=Decimal("1.20"),
              baseline=Decimal("0.10"))  # fmt: skip


def test_delivers_slack_json_after_retrying_failed_attempts(hook_factory, caplog) -> None:  # type: ignore[no-untyped-def]
    hook = hook_factory(fail=2)
    sink = WebhookSink(hook.url, retries=3, backoff=0.01)
    sink(ALERT)
    assert sink.flush(timeout=10)
    assert hook.attempts == 3 and sink.delivered == 1 and sink.failed == 0
    [body] = hook.bodies
    assert body["text"].startswith(":rotating_light: agentcost anomaly.spike (error): one call cost $1.20")
    fields = [f["text"] for f in body["blocks"][1]["fields"]]
    assert "*Value*\n1.20" in fields and "*Baseline*\n0.10" in fields and "*Agent*\nsupport-bot" in fields
    assert body["agentcost"]["kind"] == "anomaly.spike"
    assert "s3cr3t" not in repr(sink) and "s3cr3t" not in caplog.text


def test_gives_up_after_the_retries_and_logs_without_the_url(hook_factory, caplog) -> None:  # type: ignore[no-untyped-def]
    hook = hook_factory(fail=100)
    sink = WebhookSink(hook.url, retries=2, backoff=0.01)
    sink(ALERT)
    assert sink.flush(timeout=10)
    assert hook.attempts == 3 and sink.delivered == 0 and sink.failed == 1
    assert "could not deliver a anomaly.spike alert (HTTP 503)" in caplog.text and "s3cr3t" not in caplog.text


def test_a_hung_webhook_server_never_blocks_the_call(hook_factory) -> None:  # type: ignore[no-untyped-def]
    hook = hook_factory(hang=True)
    sink = WebhookSink(hook.url, timeout=5, retries=0, queue_size=2)
    enforcer = BudgetEnforcer(Budget(usd="0.01", warn_at=0.5, on_exceed="notify", store=MemoryStore()), alerts=[sink])
    ctx = ScopeContext(trace_id="t", session_id="s")
    started = time.perf_counter()
    for _ in range(6):  # warning, exceeded, escalated: three alerts to a server that answers nothing
        res = enforcer.reserve(ctx, model="gpt-4o", input_tokens=10, max_tokens=10)
        enforcer.settle(res, Usage(input=1000, output=100), model="gpt-4o")
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, elapsed  # the calls never waited for the 5-second webhook timeout
    assert not sink.flush(timeout=0.05)  # still stuck in the background
    hook.release.set()
    assert sink.flush(timeout=10)
    assert sink.delivered + sink.dropped == 3


def test_a_full_queue_drops_and_counts_instead_of_blocking(hook_factory) -> None:  # type: ignore[no-untyped-def]
    hook = hook_factory(hang=True)
    sink = WebhookSink(hook.url, timeout=5, retries=0, queue_size=1)
    for _ in range(5):
        sink(ALERT)
    assert sink.dropped >= 3  # one posting, one queued, the rest dropped
    hook.release.set()
    assert sink.flush(timeout=10)
    assert sink.delivered + sink.dropped == 5


@pytest.mark.parametrize("options", [{"retries": -1}, {"timeout": 0}, {"queue_size": 0}, {"backoff": "1"}])
def test_bad_configuration_fails_at_construction(options) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigurationError):
        WebhookSink("https://hooks.example/x", **options)
    with pytest.raises(ConfigurationError, match=r"http:// or https://"):
        WebhookSink("ftp://hooks.example/x")
