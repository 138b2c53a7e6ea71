"""Reading fields from provider payloads that arrive as dicts or as SDK objects.

A parser reads a payload once as a mapping of its fields (:func:`fields`) and then looks its
keys up (``.get``, :func:`tokens`): an SDK object (a pydantic model) is read through its
``__dict__`` in one step instead of one attribute probe per key.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..errors import UsageFormatError

_MISSING = object()
_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})


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


class Attributes:
    """An object read key by key through :func:`field` (its attributes, properties included),
    for payloads that are neither a dict nor a pydantic model."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def get(self, key: str, default: Any = None) -> Any:
        return field(self.obj, key, default)

    def __repr__(self) -> str:
        return f"Attributes({self.obj!r})"


def fields(obj: Any) -> Mapping[str, Any] | Attributes:
    """A payload as one mapping of its fields, with ``.get(key)`` as :func:`field` reads them:
    a dict as it is; None as an empty mapping; a pydantic model (every SDK response object) as its
    ``__dict__`` (its declared fields, with its extra fields when it allows them: the declared
    ones win); any other object as :class:`Attributes`."""
    if type(obj) is dict or type(obj) is Attributes:
        return obj
    if obj is None:
        return _NO_FIELDS
    if isinstance(obj, dict):
        return obj
    d = getattr(obj, "__dict__", None)
    extra = getattr(obj, "__pydantic_extra__", _MISSING)
    if d is None or extra is _MISSING:
        return Attributes(obj)
    return {**extra, **d} if extra else d


#: The largest token count a payload may carry: the ledger stores counts as 64-bit integers, and no
#: real call comes near. A larger one is malformed usage (the call is estimated and flagged), never
#: an event the ledger would refuse.
MAX_TOKENS = 2**63 - 1


def _checked(value: Any, key: str, where: str) -> int:
    """A token count read from a payload (0 for None): an integer from 0 to :data:`MAX_TOKENS`
    (integral floats and ASCII digit strings are accepted)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise UsageFormatError(f"{where}.{key} must be a token count, got {value!r}")
    if type(value) is int:
        count = value
    elif isinstance(value, float) and value.is_integer() and value >= 0:
        count = int(value)
    elif isinstance(value, str) and value.isascii() and value.isdigit():  # not "²": int() refuses it
        count = int(value)
    else:
        raise UsageFormatError(f"{where}.{key} must be a non-negative integer token count, got {value!r}")
    if count < 0:
        raise UsageFormatError(f"{where}.{key} is negative ({count})")
    if count > MAX_TOKENS:
        raise UsageFormatError(f"{where}.{key} is beyond any real token count ({count} > 2**63 - 1)")
    return count


def count(obj: Any, key: str, where: str) -> int:
    """A token count: a non-negative integer (integral floats are accepted), 0 when absent."""
    return _checked(field(obj, key), key, where)


def tokens(mapping: Mapping[str, Any] | Attributes, key: str, where: str) -> int:
    """:func:`count` for a mapping of fields (a dict, or what :func:`fields` returns): a plain
    non-negative int is returned as it is, anything else goes through the same checks."""
    value = mapping.get(key)
    if value is None:  # absent: most detail keys of most payloads
        return 0
    if type(value) is int and 0 <= value <= MAX_TOKENS:
        return value
    return _checked(value, key, where)
