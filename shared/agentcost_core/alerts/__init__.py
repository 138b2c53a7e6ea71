"""Alerts: budget thresholds and spend anomalies as :class:`Alert` values, delivered to sinks
(logging by default, any callable, :class:`WebhookSink` for Slack-compatible webhooks), and
:class:`SpendAnomalies`, the detector that can trip the kill switch (the anomaly breaker)."""

from __future__ import annotations

from .alert import SEVERITIES, Alert, AlertSink, log_alert
from .anomalies import RULES, SpendAnomalies
from .webhook import WebhookSink, slack_payload

__all__ = ["RULES", "SEVERITIES", "Alert", "AlertSink", "SpendAnomalies", "WebhookSink", "log_alert", "slack_payload"]
