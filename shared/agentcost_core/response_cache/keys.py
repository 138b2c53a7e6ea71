"""What makes two calls "the same": the exact key, the scope partition and the context fingerprint.

* The **exact key** covers the model, the full message list, the tool schemas and every parameter
  that changes the output (temperature, stop, max tokens, response format …). Adapters hand it the
  framework's canonical text of the messages and of the parameters; any difference is another key.
* The **scope** partitions entries by attribution: with the default ``("user_id",)`` two users never
  share an entry. ``scope=()`` shares entries between everyone (a deliberate choice).
* The **context fingerprint** is what a semantic hit must share besides a similar question: the
  system prompt, the tool schemas, the conversation before the last message, and the model family.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

from ..attribution import ATTRIBUTION_FIELDS, Attribution
from ..errors import ConfigurationError

__all__ = ["context_fingerprint", "exact_key", "model_family", "scope_fields", "scope_of"]

#: Bumped when the key's recipe changes, so old entries stop matching instead of being misread.
KEY_VERSION = "1"


def _digest(parts: Iterable[object]) -> str:
    text = json.dumps(list(parts), ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def exact_key(model: str | None, messages: str, params: str) -> str:
    """The exact key (sha256 hex) of a call: ``model``, the canonical text of the whole message
    list, and the canonical text of every output-changing parameter (tools included). Each part is
    hashed with its length in front, so no two different calls share their hashed bytes."""
    h = hashlib.sha256(KEY_VERSION.encode())
    for part in (model or "", messages, params):
        data = part.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    h.update(b"\x01" if model is None else b"\x00")
    return h.hexdigest()


def scope_fields(scope: Sequence[str] | str | None) -> tuple[str, ...]:
    """The validated attribution fields that partition entries (``()`` = one shared partition)."""
    if scope is None:
        return ()
    if isinstance(scope, str):
        scope = (scope,)
    fields = tuple(scope)
    unknown = [f for f in fields if f not in ATTRIBUTION_FIELDS]
    if unknown:
        raise ConfigurationError(
            f"scope names unknown attribution field(s) {unknown}; use some of {list(ATTRIBUTION_FIELDS)}"
        )
    if len(set(fields)) != len(fields):
        raise ConfigurationError(f"scope repeats a field: {list(fields)}")
    return fields


def scope_of(attribution: Attribution, fields: tuple[str, ...]) -> str:
    """The partition of a call: its values of the scope fields as text (``-`` for a missing one:
    calls that name no user share the "no user" partition, never another user's)."""
    if not fields:
        return "*"
    return "|".join(f"{f}={json.dumps(getattr(attribution, f))}" for f in fields)


def model_family(model: str | None) -> str:
    """The family a semantic hit must share: the model name without a dated suffix or a provider prefix."""
    name = (model or "").lower().rsplit("/", 1)[-1]
    parts = name.split("-")
    while parts and parts[-1].isdigit():
        parts.pop()
    return "-".join(parts)


def context_fingerprint(*, model: str | None, system: str, tools: str, history: Sequence[str]) -> str:
    """sha256 hex of the context a semantic hit must share: the system prompt, the tool schemas,
    the conversation before the last message, and the model family."""
    return _digest(("ctx", KEY_VERSION, model_family(model), system, tools, list(history)))
