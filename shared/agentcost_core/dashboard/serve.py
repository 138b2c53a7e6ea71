"""``agentcost dashboard --serve``: the page served live on 127.0.0.1, read from the ledger on each request.

``GET /`` is the page with the ledger's current data in it; ``GET /data.json`` is the data alone (the
page's reload button). The server listens on the loopback address only: the ledger names users and
sessions, so it is not offered to the network.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from ..privacy import redact_text
from .data import build_document
from .page import render_page

__all__ = ["HOST", "DashboardServer"]

HOST = "127.0.0.1"
logger = logging.getLogger("agentcost.dashboard")


class DashboardServer:
    """A live dashboard of the ledger at ``ledger_url`` on ``http://127.0.0.1:<port>/`` (``port=0``: a free one).

    ``start()`` serves from a background thread (tests, notebooks); ``serve_forever()`` blocks (the CLI);
    ``close()`` stops it. Each request opens the ledger, reads it once and closes it."""

    def __init__(self, ledger_url: str, *, port: int = 0, since: float | None = None, until: float | None = None):
        self.ledger_url = ledger_url
        self.since = since
        self.until = until
        self._httpd = ThreadingHTTPServer((HOST, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def document(self) -> dict[str, Any]:
        """The page's data, read now (a SQLite file that is gone is an error, never a new empty ledger)."""
        from ..cli import _check_ledger_exists
        from ..ledger import Ledger

        _check_ledger_exists(self.ledger_url)
        ledger = Ledger(self.ledger_url, sync=True)
        try:
            return build_document(ledger, since=self.since, until=self.until)
        finally:
            ledger.close()

    def start(self) -> DashboardServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="agentcost-dashboard", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler_for(server: DashboardServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the http.server name
            path = self.path.split("?", 1)[0]
            if path not in ("/", "/index.html", "/data.json"):
                self._send(404, "text/plain; charset=utf-8", b"not found\n")
                return
            try:
                document = server.document()
            except Exception as e:  # noqa: BLE001 - the browser gets the reason, the server keeps serving
                logger.error("agentcost dashboard: could not read the ledger: %r", e)
                self._send(
                    500, "text/plain; charset=utf-8", f"could not read the ledger: {redact_text(str(e))}\n".encode()
                )
                return
            if path == "/data.json":
                body = json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
                self._send(200, "application/json", body)
            else:
                self._send(200, "text/html; charset=utf-8", render_page(document, live=True).encode())

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # the http.server signature
            logger.debug("agentcost dashboard: " + format, *args)

    return Handler
