"""The text measures stuck detection compares tool calls and outputs with: a stable key for tool
arguments and results, character-3-gram Jaccard similarity, cosine similarity of embeddings."""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["canonical", "cosine", "jaccard", "result_text", "shingles", "short"]

_PARSE_MAX_CHARS = 10_000  # string arguments longer than this are not parsed as JSON / literals
_DETAIL_MAX_CHARS = 200

_FAILED = object()


def canonical(value: Any, parse: bool = True) -> str:
    """A stable text key for tool arguments (``parse``: strings holding JSON / Python literals are
    parsed first) or tool results. Never raises."""
    try:
        if isinstance(value, str):
            if not parse:
                return " ".join(value.split())
            s = value.strip()
            if s[:1] in ("{", "[") and len(s) <= _PARSE_MAX_CHARS:
                parsed = _parse(s)
                if parsed is not _FAILED:
                    return _dump(parsed)
            return _dump(s)
        if value is None and not parse:
            return ""
        return _dump(value)
    except Exception:  # noqa: BLE001 - an exotic object: its repr is still a usable key
        try:
            return repr(value)
        except Exception:  # noqa: BLE001 - a broken __repr__
            return f"<{type(value).__name__}>"


def _parse(s: str) -> Any:
    try:
        return json.loads(s)
    except ValueError:
        pass
    try:
        return ast.literal_eval(s)
    except Exception:  # noqa: BLE001 - SyntaxError, ValueError, RecursionError, MemoryError ...
        return _FAILED


def _dump(value: Any) -> str:
    return json.dumps(_clean(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, (int, float)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_clean(v) for v in value), key=_dump)
    dump = getattr(value, "model_dump", None)  # pydantic models
    if callable(dump):
        return _clean(dump())
    return value


def result_text(result: Any) -> str:
    if result is None:
        return ""
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, ensure_ascii=False, default=str)
    except Exception:  # noqa: BLE001 - e.g. circular structures
        return str(result)


def shingles(s: str) -> frozenset[str]:
    if len(s) < 3:
        return frozenset((s,))
    return frozenset(s[i : i + 3] for i in range(len(s) - 2))


def jaccard(a: frozenset[str], b: frozenset[str], threshold: float) -> float:
    small, large = (len(a), len(b)) if len(a) <= len(b) else (len(b), len(a))
    if large == 0:
        return 1.0
    if small / large < threshold:  # |A∩B|/|A∪B| <= small/large: cannot reach the threshold
        return small / large  # an upper bound, below the threshold
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def cosine(u: tuple[float, ...], v: tuple[float, ...]) -> float:
    dot = nu = nv = 0.0
    for x, y in zip(u, v):
        dot += x * y
        nu += x * x
        nv += y * y
    if nu == 0.0 or nv == 0.0:
        return 0.0
    return max(-1.0, min(1.0, dot / math.sqrt(nu * nv)))


def short(text: str) -> str:
    return text if len(text) <= _DETAIL_MAX_CHARS else text[: _DETAIL_MAX_CHARS - 1] + "…"
