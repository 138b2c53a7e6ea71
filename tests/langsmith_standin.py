"""A local HTTP server standing in for the LangSmith API (it records what the real ``langsmith``
SDK sends: multipart ingestion or JSON batches, both decoded), and the checks of the LangSmith
tests: a tracer pointed at it, a synchronous flush, the ``usage_metadata`` each LLM run got.

LangSmith takes costs as JSON numbers (its ``UsageMetadata`` types them ``float``): each run's
``extra.metadata.usage_metadata.total_cost`` must be ``float(event.cost)`` of the ledger event,
and ``input_cost + output_cost`` add up to it.
"""

from __future__ import annotations

import email.parser
import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import langsmith
import pytest
from langchain_core.tracers.langchain import LangChainTracer

from agentcost_langchain import CostCallbackHandler
from agentcost_langchain.testing import ScriptedChatModel


class LangSmithStandIn:
    """A local HTTP server answering the LangSmith ingestion endpoints, keeping every run it got
    (posts and patches merged per run id, as LangSmith stores them)."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # /info: the SDK's default ingestion settings
                self._reply({"version": "0.0-test"})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stand_in.receive(self.path, self.headers.get("Content-Type") or "", body)
                self._reply({})

            do_PATCH = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def receive(self, path: str, content_type: str, body: bytes) -> None:
        with self._lock:
            self.requests.append(path)
            if path.startswith("/runs/multipart"):
                self._multipart(content_type, body)
            elif path.startswith("/runs/batch"):
                batch = json.loads(body)
                for op in ("post", "patch"):
                    for run in batch.get(op) or ():
                        self._merge(str(run["id"]), run)
            elif path.startswith("/runs"):
                run = json.loads(body)
                run_id = run.get("id") or path.rstrip("/").rsplit("/", 1)[-1]
                self._merge(str(run_id), run)

    def _multipart(self, content_type: str, body: bytes) -> None:
        message = email.parser.BytesParser().parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        for part in message.get_payload():
            name = part.get_param("name", header="content-disposition")
            value = json.loads(part.get_payload(decode=True) or b"null")
            pieces = name.split(".")  # "post.<id>", "patch.<id>", "post.<id>.outputs", ...
            if pieces[0] not in ("post", "patch"):
                continue
            self._merge(pieces[1], value if len(pieces) == 2 else {pieces[2]: value})

    def _merge(self, run_id: str, fields: dict[str, Any]) -> None:
        run = self.runs.setdefault(run_id, {})
        run.update({k: v for k, v in fields.items() if v is not None})

    def llm_runs(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: v for k, v in self.runs.items() if v.get("run_type") == "llm"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tracer_to(stand_in: LangSmithStandIn) -> LangChainTracer:
    client = langsmith.Client(api_url=stand_in.url, api_key="test-key", auto_batch_tracing=True)
    return LangChainTracer(client=client, project_name="agentcost-test")


def sent_all(tracer: LangChainTracer) -> None:
    """Wait (bounded) until the SDK's background queue has sent everything to the stand-in."""
    tracer.client.flush(timeout=10)


def usage_sent(stand_in: LangSmithStandIn, run_id: str) -> dict[str, Any]:
    run = stand_in.llm_runs()[run_id]
    return run["extra"]["metadata"]["usage_metadata"]


def assert_exact_cost_on_every_llm_run(stand_in: LangSmithStandIn, handler: CostCallbackHandler) -> None:
    llm_events = [e for e in handler.events if e.kind == "llm"]
    assert llm_events and set(stand_in.llm_runs()) == {e.id for e in llm_events}
    for event in llm_events:
        sent = usage_sent(stand_in, event.id)
        assert event.cost is not None and event.cost > 0
        assert sent["total_cost"] == float(event.cost)
        assert Decimal(repr(sent["input_cost"])) + Decimal(repr(sent["output_cost"])) == pytest.approx(event.cost)
        assert sent["input_tokens"] == event.usage.prompt_tokens and sent["output_tokens"] == event.usage.output


def cheap_model(script: list[Any], **kwargs: Any) -> ScriptedChatModel:
    return ScriptedChatModel(script=script, model="gpt-4o-mini-2024-07-18", **kwargs)
