"""Alerts: budget thresholds and spend anomalies as :class:`Alert` values, delivered to sinks
(logging by default, any callable, :class:`WebhookSink` for Slack-compatible webhooks)."""

from __future__ import annotations

from .alert import SEVERITIES, Alert, AlertSink, log_alert

__all__ = ["SEVERITIES", "Alert", "AlertSink", "log_alert"]
