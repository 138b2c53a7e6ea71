"""Reading fields from provider payloads that arrive as dicts or as SDK objects."""

from __future__ import annotations

from typing import Any

from ..errors import UsageFormatError

_MISSING = object()


def field(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` for mappings, ``obj.key`` for SDK objects; ``default`` when absent or None."""
    if type(obj) is dict:
        value = obj.get(key)
        return default if value is None else value
    if obj is None:
        return default
    if isinstance(obj, dict):
        value = obj.get(key, default)
    else:
        value = getattr(obj, key, _MISSING)
        if value is _MISSING:
            extra = getattr(obj, "model_extra", None)  # pydantic models keep unknown keys here
            value = extra.get(key, default) if extra else default
    return default if value is None else value


def count(obj: Any, key: str, where: str) -> int:
    """A token count: a non-negative integer (integral floats are accepted), 0 when absent."""
    value = field(obj, key, 0)
    if type(value) is int:
        if value < 0:
            raise UsageFormatError(f"{where}.{key} is negative ({value})")
        return value
    if isinstance(value, bool):
        raise UsageFormatError(f"{where}.{key} must be a token count, got {value!r}")
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise UsageFormatError(f"{where}.{key} must be a non-negative integer token count, got {value!r}")
