"""What of a user's data agentcost keeps: by default, no secrets and no prompt-side text.

* :func:`redact_url`: a URL with its password hidden (in the user info and in query parameters
  such as ``?password=`` or ``?token=``), for every scheme (``postgresql``, ``redis``, ``rediss``,
  ``http(s)``, ``sqlite`` …). Every URL we print, log, repr or store goes through it; the real URL
  is used only to connect.
* :func:`redact_text`: free text (an error message, a log line) with API keys (``sk-…``,
  ``sk-ant-…``, ``AIza…`` …), bearer tokens, ``Authorization`` headers, ``password=`` pairs (and
  ``password hunter2`` in prose), URL passwords and email addresses replaced by ``***``.
* :func:`fingerprint`: a short stable digest of JSON-able data (tool arguments), so repeated values
  can be recognised in the ledger without being stored.
* Prompt logging (``log_prompts=True`` where recording is configured: :class:`CostRecorder`,
  the adapters' handlers, ``track_costs``, ``guard`` and ``instrument``) is off by default. Off, a
  provider error is stored as its class and HTTP status only (``AuthenticationError (401)``) and
  tool arguments in guard events as their fingerprint; on, the error's message and the arguments
  are kept, still passed through :func:`redact_text`. Keys and passwords are never kept. The
  prompts and responses themselves are kept too (see :mod:`agentcost_core.prompt_log`), each text
  passed through :func:`redact_prompt_text` first.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MASK",
    "describe_error",
    "error_status",
    "fingerprint",
    "private_guard_details",
    "redact_card_numbers",
    "redact_prompt_text",
    "redact_text",
    "redact_url",
]

MASK = "***"
_MAX_ERROR_CHARS = 2000

# --- URLs ----------------------------------------------------------------------------------------
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*:)(//)?")
#: Query parameter names whose values are secrets (compared lowercased, ``-`` read as ``_``).
_SECRET_KEYS = frozenset(
    {
        "password", "passwd", "pwd", "pass", "passphrase", "sslpassword", "secret", "client_secret",
        "token", "access_token", "refresh_token", "id_token", "auth", "auth_token", "authorization",
        "api_key", "apikey", "key", "x_api_key", "sig", "signature", "credential", "credentials",
        "session_token", "security_token", "private_key",
    }
)  # fmt: skip
_SECRET_PARTS = ("password", "passwd", "secret", "token", "apikey", "api_key", "credential", "private_key")


def _secret_key(name: str) -> bool:
    k = name.strip().lower().replace("-", "_")
    return k in _SECRET_KEYS or any(part in k for part in _SECRET_PARTS)


def _redact_query(query: str) -> str:
    """``a=1&password=x`` -> ``a=1&password=***``."""
    parts = []
    for pair in query.split("&"):
        name, sep, value = pair.partition("=")
        parts.append(f"{name}={MASK}" if sep and value and _secret_key(name) else pair)
    return "&".join(parts)


def redact_url(url: Any) -> Any:
    """``url`` with the password of its user info and the values of secret query parameters
    replaced by ``***`` (``postgresql://app:***@db/x?sslpassword=***``). The user name, host,
    path and other parameters stay, so the URL still says where it points. Anything that is not
    a string is returned as it is."""
    if not isinstance(url, str):
        return url
    m = _SCHEME.match(url)
    start = m.end() if m else 0
    # The authority ends at the first "/", "?" or "#" after the last "@" of the part before the
    # query: a password may hold "/" or "#", an email in the query is not user info.
    q = url.find("?", start)
    head, tail = (url, "") if q < 0 else (url[:q], url[q:])
    if m and m.group(2):
        at = head.rfind("@", start)
        if at >= 0:
            userinfo = head[start:at]
            user, colon, _ = userinfo.partition(":")
            if colon:
                head = f"{head[:start]}{user}:{MASK}{head[at:]}"
    if tail:
        query, hash_, fragment = tail[1:].partition("#")
        tail = "?" + _redact_query(query) + hash_ + fragment
    return head + tail


# --- free text -----------------------------------------------------------------------------------
#: (needles, pattern, replacement): a rule runs only when one of its needles (lowercase literals
#: that every match contains) is in the lowercased text, so plain prose costs a few substring scans.
_TEXT_RULES: tuple[tuple[tuple[str, ...], re.Pattern[str], Any], ...] = (
    # user:password@ in any URL
    (("://",), re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@\"'<>]*):[^\s@\"'<>]*@"), rf"\1:{MASK}@"),
    # Authorization / API-key headers, in header, JSON or repr form: the whole value goes
    (
        ("authorization", "api-key"),
        re.compile(
            r"""(?i)(["']?\b(?:proxy-)?authorization["']?\s*[:=]\s*["']?)[^"'\r\n,}]+"""
            r"""|(["']?\b(?:x-api-key|api-key|x-goog-api-key|xi-api-key)["']?\s*[:=]\s*["']?)[^"'\s,;}]+"""
        ),
        lambda m: (m.group(1) or m.group(2)) + MASK,
    ),
    (("bearer",), re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"), rf"\1 {MASK}"),
    # key=value / key: value pairs whose key names a secret (query strings, DSNs, JSON, reprs)
    (
        ("pass", "pwd", "secret", "token", "apikey", "api_key", "api-key", "credential"),
        re.compile(
            r"""(?i)(["']?\b[\w\-]*(?:password|passwd|pwd|secret|token|api[_\-]?key|credential)["']?"""
            r"""\s*[:=]\s*["']?)(?!\*\*\*)[^\s"'&,;}<>]+"""
        ),
        rf"\1{MASK}",
    ),
    # a password given in prose ("password hunter2", "password is hunter2"): the word after it goes
    (
        ("pass",),
        re.compile(r"""(?i)(\b(?:password|passwd|passphrase)\s+(?:is\s+|was\s+)?)(?!\*\*\*)[^\s"'&,;}<>)]+"""),
        rf"\1{MASK}",
    ),
    # provider API keys
    (("sk-",), re.compile(r"\bsk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{8,}"), MASK),
    (("aiza",), re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"), MASK),
    (
        ("gh", "github_pat_", "glpat-", "hf_", "gsk_", "xai-", "r8_", "pplx-"),
        re.compile(r"\b(?:gh[pousr]_|github_pat_|glpat-|hf_|gsk_|xai-|r8_|pplx-)[A-Za-z0-9_\-]{16,}"),
        MASK,
    ),
    (("xox",), re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"), MASK),
    (("akia", "asia"), re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), MASK),
    # email addresses
    (("@",), re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"), f"{MASK}@{MASK}"),
)


def redact_text(text: Any) -> Any:
    """``text`` with secrets and email addresses replaced by ``***``: API keys, bearer tokens,
    ``Authorization`` headers, ``password=`` / ``token:`` pairs, URL passwords. Anything that is
    not a string is returned as it is."""
    if not isinstance(text, str) or not text:
        return text
    lowered = text.lower()
    for needles, pattern, replacement in _TEXT_RULES:
        if any(n in lowered for n in needles):
            text = pattern.sub(replacement, text)
    return text


# --- prompt text (prompt logging) ---------------------------------------------------------------
#: 13 to 19 digits in groups separated by single spaces or dashes, starting like a card network's
#: numbers (2-6); a match is masked only when its digits pass the Luhn check.
_CARD = re.compile(r"(?<![\d\-])[2-6]\d{3}(?:[ \-]?\d){9,15}(?![\d\-])")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask_card(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return MASK if 13 <= len(digits) <= 19 and _luhn_ok(digits) else m.group(0)


def redact_card_numbers(text: Any) -> Any:
    """``text`` with payment card numbers (13-19 digits, optionally grouped by spaces or dashes,
    passing the Luhn check) replaced by ``***``; other long numbers stay."""
    if not isinstance(text, str) or not text:
        return text
    return _CARD.sub(_mask_card, text)


def redact_prompt_text(text: str, *, patterns: tuple[re.Pattern[str], ...] = (), redact: Any = None) -> str:
    """One piece of a logged prompt or response as it may be stored or exported: first the user's
    ``patterns`` (each match becomes ``***``) and ``redact`` callable (text -> text), then always
    the built-in redactors: :func:`redact_text` (API keys, bearer tokens, authorization headers,
    passwords, emails) and :func:`redact_card_numbers`. The built-ins run last, so a key never
    survives whatever the user's hook returns."""
    for pattern in patterns:
        text = pattern.sub(MASK, text)
    if redact is not None:
        text = redact(text)
        if not isinstance(text, str):
            raise TypeError(f"redact= must return a string, got {type(text).__name__}")
    return redact_card_numbers(redact_text(text))


# --- data ----------------------------------------------------------------------------------------
def fingerprint(value: Any) -> str:
    """A short stable digest of JSON-able data (``"sha256:1f2e3d4c5b6a"``): equal values (dict key
    order aside) give equal fingerprints, in every process; the value cannot be read back."""
    try:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=repr)
    except (TypeError, ValueError):  # keys that cannot be sorted, circular data
        text = repr(value)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest[:12]}"


# --- errors --------------------------------------------------------------------------------------
def error_status(error: BaseException) -> int | None:
    """The HTTP status an exception carries (``status_code``, ``response.status_code`` or
    ``status``, as the OpenAI, Anthropic, httpx and requests SDKs set them), or None."""
    for value in (
        getattr(error, "status_code", None),
        getattr(getattr(error, "response", None), "status_code", None),
        getattr(error, "status", None),
    ):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def describe_error(
    error: BaseException | str | None, *, keep_message: bool = False, limit: int = _MAX_ERROR_CHARS
) -> str | None:
    """An error as one bounded line for the ledger: its class and HTTP status
    (``AuthenticationError (401)``); with ``keep_message`` (prompt logging on) its message too,
    passed through :func:`redact_text`. A string (an adapter's own description) is redacted."""
    if error is None:
        return None
    if isinstance(error, str):
        text = redact_text(error)
    else:
        status = error_status(error)
        text = type(error).__name__ if status is None else f"{type(error).__name__} ({status})"
        if keep_message:
            message = str(error)
            if message:
                text = f"{text}: {redact_text(message)}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: A circuit breaker's message quotes the tool's last error: "(last error: ValueError: …)."
_LAST_ERROR = re.compile(r"\(last error: ([A-Za-z_][\w.]*)(?::.*)?\)\.", re.DOTALL)


def private_guard_details(details: Mapping[str, Any], *, log_prompts: bool = False) -> dict[str, Any]:
    """A guard event's details as the ledger keeps them. Unless ``log_prompts``: tool arguments
    (``args``) are replaced by their :func:`fingerprint` (also where a message quotes them), and
    a tool error quoted by a circuit breaker's message keeps only its class. Every text is passed
    through :func:`redact_text` either way."""
    out = dict(details)
    if not log_prompts:
        args = out.get("args")
        if args is not None:
            fp = fingerprint(args)
            out["args"] = fp
            if isinstance(args, str) and args:
                for k, v in out.items():
                    if isinstance(v, str) and k != "args" and args in v:
                        out[k] = v.replace(args, fp)
        for k, v in out.items():
            if isinstance(v, str) and "(last error: " in v:
                out[k] = _LAST_ERROR.sub(r"(last error: \1).", v)
    for k, v in out.items():
        if isinstance(v, str):
            out[k] = redact_text(v)
    return out
