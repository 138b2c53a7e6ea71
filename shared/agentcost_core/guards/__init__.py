"""Guards that stop a misbehaving agent: stuck detection, the kill switch, per-tool circuit
breakers and the retry classifier. Each is framework-free; the adapters call them before and
after every model and tool call."""

from __future__ import annotations

__all__: list[str] = []
