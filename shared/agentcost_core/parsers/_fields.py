"""Reading fields from provider payloads that arrive as dicts or as SDK objects."""

from __future__ import annotations

from typing import Any

from ..errors import UsageFormatError

_MISSING = object()


_CLASS_HAS: dict[tuple[type, str], bool] = {}


def _class_has(cls: type, key: str) -> bool:
    found = _CLASS_HAS.get((cls, key))
    if found is None:
        found = _CLASS_HAS[(cls, key)] = any(key in c.__dict__ for c in cls.__mro__)
    return found


def field(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` for mappings, ``obj.key`` for SDK objects; ``default`` when absent or None.

    SDK objects (pydantic models) are read through their ``__dict__`` and
    ``__pydantic_extra__``: asking a pydantic model for a field it lacks raises (and swallows) an
    AttributeError, ~4 µs, and parsers probe for other providers' field names on every call.
    """
    if type(obj) is dict:
        value = obj.get(key)
        return default if value is None else value
    if obj is None:
        return default
    if isinstance(obj, dict):
        value = obj.get(key, default)
        return default if value is None else value
    d = getattr(obj, "__dict__", None)
    if d is not None and key in d:  # a declared field of a pydantic model (or a plain attribute)
        value = d[key]
    else:
        # undeclared fields of a pydantic model that allows extras (``model_extra`` is a property
        # returning this same dict: read only when the attribute itself is absent)
        extra = getattr(obj, "__pydantic_extra__", _MISSING)
        if extra is _MISSING:
            extra = getattr(obj, "model_extra", None)
        if extra and key in extra:
            value = extra[key]
        elif _class_has(type(obj), key):  # a property or class attribute
            value = getattr(obj, key, default)
        else:
            value = default
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
    if isinstance(value, str) and value.isascii() and value.isdigit():  # not "²": int() refuses it
        return int(value)
    raise UsageFormatError(f"{where}.{key} must be a non-negative integer token count, got {value!r}")


def tokens(mapping: Any, key: str, where: str) -> int:
    """:func:`count` for a mapping (what LangChain and most dict payloads give): a plain
    non-negative int is returned as it is, anything else goes through :func:`count`'s checks."""
    value = mapping.get(key)
    if type(value) is int and value >= 0:
        return value
    if value is None:
        return 0
    return count(mapping, key, where)
