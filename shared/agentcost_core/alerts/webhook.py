"""``WebhookSink(url)``: alerts POSTed as Slack-compatible JSON (``{"text": ..., "blocks": [...]}``,
which Slack incoming webhooks, Mattermost, Discord's ``/slack`` endpoints and most chat tools
accept), off the call path.

Calling the sink only queues the alert (a bounded queue; a full queue drops the alert and counts
it); one daemon thread posts, retrying a failed post (a connection error, a timeout, a 429 or a
5xx answer) with exponential backoff. A hung or failing server never blocks or breaks a call. The
URL (a Slack webhook URL is itself a secret) is never logged: reprs and logs show only its scheme
and host.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ..errors import ConfigurationError
from ..privacy import redact_text, redact_url
from .alert import Alert
from .outbox import Outbox

__all__ = ["WebhookSink", "slack_payload"]

logger = logging.getLogger("agentcost.alerts")

_ICON = {"info": ":information_source:", "warning": ":warning:", "error": ":rotating_light:", "critical": ":octagonal_sign:"}  # fmt: skip
_FIELD_NAMES = (("agent_id", "Agent"), ("feature", "Feature"), ("user_id", "User"), ("session_id", "Session"))


def slack_payload(alert: Alert) -> dict[str, Any]:
    """The JSON body posted for ``alert``: ``text`` (what plain webhooks show) plus Block Kit blocks
    with the kind, severity, value, baseline and attribution as fields."""
    text = f"{_ICON[alert.severity]} agentcost {alert.kind} ({alert.severity}): {alert.message}"
    fields = [f"*Kind*\n{alert.kind}", f"*Severity*\n{alert.severity}"]
    if alert.value is not None:
        fields.append(f"*Value*\n{alert.value}")
    if alert.baseline is not None:
        fields.append(f"*Baseline*\n{alert.baseline}")
    fields += [f"*{label}*\n{alert.attribution[k]}" for k, label in _FIELD_NAMES if alert.attribution.get(k)]
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields[:10]]},  # Slack's limit
        ],
        "agentcost": alert.as_dict(),
    }


class WebhookSink:
    """``WebhookSink(url, *, timeout=5.0, retries=3, backoff=1.0, max_backoff=30.0, queue_size=1000,
    headers=None)``: ``retries`` more attempts after the first, waiting ``backoff`` × 2ⁿ seconds
    (at most ``max_backoff``) between them. :meth:`flush` waits for what was queued (tests, exit);
    ``delivered`` / ``failed`` / ``dropped`` count the alerts."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        queue_size: int = 1000,
        headers: dict[str, str] | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"WebhookSink url must be an http:// or https:// URL, got {redact_url(url)!r}")
        for name, value in (("timeout", timeout), ("backoff", backoff), ("max_backoff", max_backoff)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ConfigurationError(f"WebhookSink {name} must be a number of seconds > 0, got {value!r}")
        for name, value in (("retries", retries), ("queue_size", queue_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "retries" else 1):
                raise ConfigurationError(f"WebhookSink {name} must be a whole number, got {value!r}")
        self._url = url
        #: Where alerts go, without the path or query (a webhook URL's secret lives there).
        self.where = redact_url(f"{parts.scheme}://{parts.netloc}/…")
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self._headers = {"Content-Type": "application/json", "User-Agent": "agentcost-alerts", **(headers or {})}
        self._outbox = Outbox("agentcost-webhook", maxsize=queue_size)
        self._stop = threading.Event()
        self.delivered = 0
        self.failed = 0

    @property
    def dropped(self) -> int:
        """Alerts dropped because the queue was full (the server is slow or down)."""
        return self._outbox.dropped

    def __call__(self, alert: Alert) -> None:
        body = json.dumps(slack_payload(alert), default=str).encode("utf-8")
        self._outbox.submit(lambda: self._post(body, alert.kind))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every alert queued so far is delivered or given up (True), or ``timeout`` passed."""
        return self._outbox.flush(timeout)

    def close(self) -> None:
        """Stop waiting between retries: what is queued is tried once more and given up."""
        self._stop.set()

    def _post(self, body: bytes, kind: str) -> None:
        for attempt in range(self.retries + 1):
            try:
                request = urllib.request.Request(self._url, data=body, headers=self._headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read(1024)
                self.delivered += 1
                return
            except urllib.error.HTTPError as e:
                problem = f"HTTP {e.code}"
                if e.code != 429 and e.code < 500:  # a 4xx other than 429 will not change on retry
                    break
            except Exception as e:  # noqa: BLE001 - unreachable, timed out, reset: retry
                problem = f"{type(e).__name__}: {redact_text(str(e))}"
            if attempt < self.retries and self._stop.wait(min(self.backoff * 2**attempt, self.max_backoff)):
                break
        self.failed += 1
        logger.warning("agentcost webhook %s: could not deliver a %s alert (%s)", self.where, kind, problem)

    def __repr__(self) -> str:
        return f"WebhookSink({self.where!r}, retries={self.retries}, timeout={self.timeout})"
