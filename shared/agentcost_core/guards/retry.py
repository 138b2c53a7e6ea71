"""Retry classification: which failures deserve another try, and what kind.

:func:`classify` sorts an exception into one of three actions:

- ``BACKOFF``: rate limits (429), timeouts and connection errors, server errors and overload (5xx,
  Anthropic's 529) - wait and try the same call again, honouring ``retry-after-ms`` /
  ``retry-after`` (seconds or an HTTP date) when the provider sent one;
- ``REPAIR``: the request or the model's output did not validate (400/422, pydantic
  ``ValidationError``, ``json.JSONDecodeError``, LangChain's ``OutputParserException``) - try again
  once with the error fed back to the model;
- ``FAIL``: authentication, permission, an exhausted quota or spend limit, a deliberate halt, and
  anything unknown - retrying cannot help, fail fast.

The provider SDKs are optional: their exception classes are looked up in ``sys.modules``, so
nothing is imported here (an SDK that was never imported raised nothing), and a ``status_code``
attribute is the fallback for any other HTTP client. Wrapped errors are followed through
``__cause__``.

:class:`RetryPolicy` applies the decisions: exponential backoff with full jitter, and a repair loop
that calls ``fn(feedback)`` again with the error text.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import json
import logging
import math
import random
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from ..errors import ConfigurationError
from ..halts import AgentHalted

__all__ = ["RetryAction", "RetryDecision", "RetryPolicy", "classify", "repair_feedback"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_MAX_CAUSE_DEPTH = 5
_MAX_FEEDBACK = 2000
# A 429 that no amount of waiting fixes: the account is out of money or quota.
_QUOTA_CODES = frozenset(
    {"insufficient_quota", "billing_hard_limit_reached", "contract_spend_limit_reached", "enforced_spend_limit_reached"}
)
_PARSER_ERROR_NAMES = frozenset({"OutputParserException"})


class RetryAction(str, Enum):
    """What to do about a failed call."""

    BACKOFF = "backoff"
    REPAIR = "repair"
    FAIL = "fail"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class RetryDecision:
    """The action for one exception, why, and the provider's ``retry-after`` in seconds if it sent one."""

    action: RetryAction
    reason: str
    retry_after: float | None = None


# -- the SDKs' classes, found only if the SDK is already imported --------------------------------


def _classes(module: str, *names: str) -> tuple[type[BaseException], ...]:
    mod = sys.modules.get(module)
    if mod is None:
        return ()
    found = (getattr(mod, name, None) for name in names)
    return tuple(c for c in found if isinstance(c, type) and issubclass(c, BaseException))


def _sdk(*names: str) -> tuple[type[BaseException], ...]:
    return _classes("openai", *names) + _classes("anthropic", *names)


def _transport_errors() -> tuple[type[BaseException], ...]:
    # httpx / httpx2 raise these when a provider is called without its SDK wrapper (transient ones
    # only: an unsupported protocol or a bad proxy setting will not fix itself).
    names = ("TimeoutException", "NetworkError", "RemoteProtocolError")
    return _classes("httpx", *names) + _classes("httpx2", *names)


def _name(exc: BaseException) -> str:
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


def _where(exc: BaseException, status: int | None) -> str:
    return _name(exc) + (f", HTTP {status}" if status is not None else "")


def _status(exc: BaseException) -> int | None:
    for value in (
        getattr(exc, "status_code", None),
        getattr(exc, "status", None),
        getattr(getattr(exc, "response", None), "status_code", None),
    ):
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    return None


def _error_code(exc: BaseException) -> str | None:
    for attr in ("error_code", "code"):  # anthropic: error_code; openai: code
        value = getattr(exc, attr, None)
        if isinstance(value, str):
            return value
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            for key in ("code", "type"):
                value = err.get(key)
                if isinstance(value, str) and value in _QUOTA_CODES:
                    return value
    return None


def classify(exc: BaseException, *, now: Callable[[], float] = time.time) -> RetryDecision:
    """The :class:`RetryDecision` for ``exc``; ``now`` (epoch seconds) resolves HTTP-date ``retry-after``.

    An exception this module does not know is judged by its explicit cause (``raise X from e``),
    up to a few levels deep, so a framework's wrapper around a provider error still classifies.
    """
    current: BaseException | None = exc
    for _ in range(_MAX_CAUSE_DEPTH + 1):
        if current is None:
            break
        decision = _classify_one(current, now)
        if decision is not None:
            if current is not exc:
                return RetryDecision(
                    decision.action, f"{decision.reason}, raised as {_name(exc)}", decision.retry_after
                )
            return decision
        current = current.__cause__
    return RetryDecision(RetryAction.FAIL, f"unknown error, not retried ({_where(exc, _status(exc))})")


def _classify_one(exc: BaseException, now: Callable[[], float]) -> RetryDecision | None:
    """The decision for this exception alone, or ``None`` when it is not one we know."""
    status = _status(exc)
    where = _where(exc, status)

    if isinstance(exc, AgentHalted):
        return RetryDecision(RetryAction.FAIL, f"deliberate halt ({exc.reason}): {where}")
    if isinstance(exc, _sdk("AuthenticationError", "PermissionDeniedError")) or status in (401, 403):
        return RetryDecision(RetryAction.FAIL, f"authentication or permission error ({where})")
    if isinstance(exc, _sdk("RateLimitError")) or status == 429:
        code = _error_code(exc)
        if code in _QUOTA_CODES:
            return RetryDecision(RetryAction.FAIL, f"quota or spend limit exhausted ({where}, {code})")
        return RetryDecision(RetryAction.BACKOFF, f"rate limited ({where})", _retry_after(exc, now))
    timeouts = _sdk("APITimeoutError", "APIConnectionError", "RequestTimeoutError") + _transport_errors()
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError, ConnectionError, *timeouts)) or status == 408:
        return RetryDecision(RetryAction.BACKOFF, f"timeout or connection error ({where})", _retry_after(exc, now))
    if isinstance(exc, _sdk("InternalServerError")) or (status is not None and status >= 500):
        return RetryDecision(RetryAction.BACKOFF, f"server error or overloaded ({where})", _retry_after(exc, now))
    validation = _sdk("BadRequestError", "UnprocessableEntityError") + _classes("pydantic_core", "ValidationError")
    if isinstance(exc, (json.JSONDecodeError, *validation)) or status in (400, 422):
        return RetryDecision(RetryAction.REPAIR, f"validation error ({where})")
    if any(cls.__name__ in _PARSER_ERROR_NAMES for cls in type(exc).__mro__):
        return RetryDecision(RetryAction.REPAIR, f"output parsing error ({where})")
    return None


def _retry_after(exc: BaseException, now: Callable[[], float]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date), else a numeric
    ``retry_after`` attribute; ``None`` when absent or unreadable."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is not None:
        ms = _header(headers, "retry-after-ms")
        if ms is not None:
            try:
                value = float(ms) / 1000.0
                if math.isfinite(value):
                    return max(0.0, value)
            except ValueError:
                pass
        raw = _header(headers, "retry-after")
        if raw is not None:
            try:
                value = float(raw)
                if math.isfinite(value):
                    return max(0.0, value)
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(raw)
                except (TypeError, ValueError):
                    when = None
                if when is not None and when.tzinfo is not None:
                    return max(0.0, when.timestamp() - now())
    value = getattr(exc, "retry_after", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return max(0.0, float(value))
    return None


def _header(headers: Any, name: str) -> str | None:
    try:
        value = headers.get(name)
    except Exception:  # noqa: BLE001 - a foreign headers object: treat as absent
        return None
    if value is None and isinstance(headers, Mapping):  # a plain dict is case-sensitive
        value = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == name), None)
    return None if value is None else str(value).strip()


def repair_feedback(exc: BaseException) -> str:
    """The text to give the model after a REPAIR-class error: what was wrong, and to fix it."""
    text = str(exc).strip() or type(exc).__name__
    if len(text) > _MAX_FEEDBACK:
        text = text[: _MAX_FEEDBACK - 1] + "…"
    return (
        f"Your previous attempt could not be used: {type(exc).__name__}: {text}\n"
        "Correct the problem and answer again, following the required format exactly."
    )


# -- the policy ------------------------------------------------------------------------------


class RetryPolicy:
    """Retries what :func:`classify` says is worth retrying.

    ``max_attempts`` counts every call, the first included (1 = no retry). Between BACKOFF attempts
    it sleeps :meth:`delay`. ``repair_attempts`` is how many times :meth:`call_with_repair` calls
    again with feedback after a REPAIR-class error. ``sleep`` / ``asleep`` / ``rand`` are injectable
    for tests; ``classifier`` replaces :func:`classify`.
    """

    def __init__(
        self,
        max_attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        repair_attempts: int = 1,
        *,
        sleep: Callable[[float], Any] = time.sleep,
        asleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        classifier: Callable[[BaseException], RetryDecision] = classify,
    ) -> None:
        _check_int("max_attempts", max_attempts, 1)
        _check_int("repair_attempts", repair_attempts, 0)
        _check_seconds("base_delay", base_delay)
        _check_seconds("max_delay", max_delay)
        if max_delay < base_delay:
            raise ConfigurationError(f"RetryPolicy max_delay ({max_delay}) must be >= base_delay ({base_delay})")
        for label, fn in (("sleep", sleep), ("asleep", asleep), ("rand", rand), ("classifier", classifier)):
            if not callable(fn):
                raise ConfigurationError(f"RetryPolicy {label} must be callable, got {fn!r}")
        self.max_attempts = max_attempts
        self.base_delay = float(base_delay)
        self.max_delay = float(max_delay)
        self.repair_attempts = repair_attempts
        self._sleep = sleep
        self._asleep = asleep
        self._rand = rand
        self._classify = classifier

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): full jitter over
        ``base_delay * 2 ** (attempt - 1)`` capped at ``max_delay``, never below ``retry_after``
        (which may exceed ``max_delay``: the provider's word wins)."""
        if attempt < 1:
            raise ValueError(f"attempt is 1-based, got {attempt}")
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, 64))
        wait = self._rand() * ceiling
        if retry_after is not None and retry_after > wait:
            return float(retry_after)
        return wait

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, retried on BACKOFF errors up to ``max_attempts`` calls; REPAIR
        and FAIL errors (and the last BACKOFF one) are re-raised."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                wait = self._backoff(e, attempt)
                if wait is None:
                    raise
                self._sleep(wait)

    async def acall(self, fn: Callable[..., Awaitable[T] | T], *args: Any, **kwargs: Any) -> T:
        """:meth:`call` for coroutine functions, sleeping with ``asleep``."""
        attempt = 0
        while True:
            attempt += 1
            try:
                result = fn(*args, **kwargs)
                return await result if inspect.isawaitable(result) else result  # type: ignore[return-value]
            except Exception as e:
                wait = self._backoff(e, attempt)
                if wait is None:
                    raise
                await self._asleep(wait)

    def call_with_repair(self, fn: Callable[[str | None], T]) -> T:
        """``fn(None)``; after a REPAIR-class error, ``fn(feedback)`` with the error text (up to
        ``repair_attempts`` times). BACKOFF errors are retried as in :meth:`call`."""
        feedback: str | None = None
        backoffs = repairs = 0
        while True:
            try:
                return fn(feedback)
            except Exception as e:
                decision = self._classify(e)
                if decision.action is RetryAction.REPAIR and repairs < self.repair_attempts:
                    repairs += 1
                    feedback = self._repair(e, decision, repairs)
                    continue
                backoffs += 1
                wait = self._backoff(e, backoffs, decision)
                if wait is None:
                    raise
                self._sleep(wait)

    async def acall_with_repair(self, fn: Callable[[str | None], Awaitable[T] | T]) -> T:
        """:meth:`call_with_repair` for coroutine functions."""
        feedback: str | None = None
        backoffs = repairs = 0
        while True:
            try:
                result = fn(feedback)
                return await result if inspect.isawaitable(result) else result  # type: ignore[return-value]
            except Exception as e:
                decision = self._classify(e)
                if decision.action is RetryAction.REPAIR and repairs < self.repair_attempts:
                    repairs += 1
                    feedback = self._repair(e, decision, repairs)
                    continue
                backoffs += 1
                wait = self._backoff(e, backoffs, decision)
                if wait is None:
                    raise
                await self._asleep(wait)

    def _backoff(self, exc: Exception, attempt: int, decision: RetryDecision | None = None) -> float | None:
        """The wait before the next attempt after failed attempt ``attempt``, or ``None`` when
        ``exc`` must not be retried (the caller re-raises it)."""
        decision = decision or self._classify(exc)
        if decision.action is not RetryAction.BACKOFF:
            return None
        if attempt >= self.max_attempts:
            logger.warning("giving up after %d attempts: %s", attempt, decision.reason)
            return None
        wait = self.delay(attempt, decision.retry_after)
        logger.info("attempt %d failed (%s); retrying in %.2fs", attempt, decision.reason, wait)
        return wait

    @staticmethod
    def _repair(exc: Exception, decision: RetryDecision, n: int) -> str:
        logger.info("repair attempt %d after %s", n, decision.reason)
        return repair_feedback(exc)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"RetryPolicy {name} must be an integer >= {minimum}, got {value!r}")


def _check_seconds(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"RetryPolicy {name} must be a finite number of seconds >= 0, got {value!r}")
