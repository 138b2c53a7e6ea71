"""One partition's vectors packed in a matrix: the semantic layer's pre-filter.

A semantic hit needs the same scope and the same context fingerprint, so every backend keeps, per
(scope, context) partition, the unit vectors of its entries in one matrix (numpy float32 when numpy is
importable, rows of floats otherwise) and answers "which entries are at least ``floor`` similar to this
query, unexpired, and state the same strict facts" with one matrix-vector product.

The index only narrows the candidates; it never decides. The matcher (:mod:`.semantic`) decides on the
entries themselves, read back from the store, with its exact float64 cosine. So that rounding never
drops an entry the matcher would accept, the layer asks for ``threshold - SLACK``. The facts filter
drops only entries the number, id, date or negation guard would refuse anyway (their
:func:`~.semantic.strict_facts` differ from the query's); an entry's facts are worked out the first
time its vector passes the floor, then kept.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from .semantic import query_facts, strict_facts

try:  # numpy is optional: one matrix-vector product per lookup when present, a Python loop otherwise
    import numpy as _np
except ImportError:  # pragma: no cover - exercised by monkeypatching in the tests
    _np = None

__all__ = ["SLACK", "PartitionCache", "VectorIndex"]

#: How far below the threshold the pre-filter reaches (float32 rounding of a dot product is ~1e-5).
SLACK = 1e-3


def _unit(vector: Sequence[float]) -> Any:
    """``vector`` scaled to length 1 (a numpy array, or a list without numpy); None for a zero or
    non-finite vector."""
    if _np is not None:
        values = _np.asarray(vector, dtype=_np.float64).ravel()
        norm = math.sqrt(float(values @ values)) if values.size else 0.0
    else:
        values = [float(x) for x in vector]
        norm = math.sqrt(math.fsum(x * x for x in values))
    if norm == 0.0 or not math.isfinite(norm):
        return None
    return values / norm if _np is not None else [x / norm for x in values]


class _Block:
    """The rows of one vector length (an embedder change makes another block; a query is compared
    with the rows of its own length only: the matcher scores other lengths 0)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.keys: list[str | None] = []  # None: a dropped row (its vector zeroed, never above a floor)
        self.texts: list[str] = []
        self.facts: list[Hashable | None] = []
        self.expires: Any = _np.zeros(8) if _np is not None else []
        self.matrix: Any = _np.zeros((8, dim), dtype=_np.float32) if _np is not None else []
        self.dead = 0

    def __len__(self) -> int:
        return len(self.keys)

    def append(self, unit: Any, text: str, expires: float) -> int:
        row = len(self.keys)
        self.keys.append(None)
        self.texts.append(text)
        self.facts.append(None)
        if _np is None:
            self.matrix.append(unit)
            self.expires.append(expires)
            return row
        if row == self.matrix.shape[0]:  # grow by doubling: appends stay amortised O(1)
            self.matrix = _np.concatenate([self.matrix, _np.zeros_like(self.matrix)])
            self.expires = _np.concatenate([self.expires, _np.zeros_like(self.expires)])
        self.set(row, unit, text, expires)
        return row

    def set(self, row: int, unit: Any, text: str, expires: float) -> None:
        self.texts[row], self.facts[row] = text, None
        if _np is None:
            self.matrix[row], self.expires[row] = unit, expires
        else:
            self.matrix[row] = unit
            self.expires[row] = expires

    def drop(self, row: int) -> None:
        self.keys[row] = None
        self.texts[row], self.facts[row] = "", None
        self.set(row, [0.0] * self.dim, "", -math.inf)
        self.dead += 1

    def above(self, unit: Any, floor: float, now: float) -> list[int]:
        """Rows (ascending) whose cosine with ``unit`` is at least ``floor`` and that have not expired."""
        n = len(self.keys)
        if _np is None:  # unit vectors: cosine = 1 - |a - b|² / 2, the distance computed in C
            rows, expires, limit = self.matrix, self.expires, 2.0 * (1.0 - floor)
            return [i for i in range(n) if expires[i] > now and math.dist(rows[i], unit) ** 2 <= limit]
        # einsum: numpy's own single-threaded loop; BLAS's threaded matrix-vector product was 2-10x
        # slower whenever another process kept a core of this 2-core machine busy
        sims = _np.einsum("ij,j->i", self.matrix[:n], _np.asarray(unit, dtype=_np.float32))
        return _np.flatnonzero((sims >= floor) & (self.expires[:n] > now)).tolist()


class VectorIndex:
    """The unit vectors of one partition's entries, by entry key; safe across threads.

    ``cursor`` and ``generation`` belong to the backend that fills the index (how far it has read the
    store, and the store's count of deletions when it started)."""

    def __init__(self, generation: Any = None) -> None:
        self._lock = threading.Lock()
        self._blocks: dict[int, _Block] = {}
        self._rows: dict[str, tuple[_Block, int]] = {}
        self.cursor: Any = 0
        self.generation = generation
        self.pruned = -math.inf  # when the backend last asked for the expired rows
        #: Held while a backend reads the store into the index (one reader per partition at a time).
        self.filling = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, key: str, vector: Sequence[float], text: str, expires: float | None) -> None:
        """Index (or re-index) ``key``'s vector; a zero or non-finite vector is not indexed."""
        unit = _unit(vector)
        with self._lock:
            self._discard(key)
            if unit is None:
                return
            block = self._blocks.get(len(unit))
            if block is None:
                block = self._blocks[len(unit)] = _Block(len(unit))
            row = block.append(unit, text, math.inf if expires is None else expires)
            block.keys[row] = key
            self._rows[key] = (block, row)

    def discard(self, key: str) -> None:
        with self._lock:
            self._discard(key)

    def _discard(self, key: str) -> None:
        found = self._rows.pop(key, None)
        if found is None:
            return
        block, row = found
        block.drop(row)
        if block.dead > 64 and block.dead * 2 > len(block):
            self._compact(block)

    def _compact(self, block: _Block) -> None:
        """Rebuild ``block`` without its dropped rows, in the same order."""
        fresh = _Block(block.dim)
        for row, key in enumerate(block.keys):
            if key is not None:
                unit = list(map(float, block.matrix[row]))
                new = fresh.append(unit, block.texts[row], float(block.expires[row]))
                fresh.keys[new], fresh.facts[new] = key, block.facts[row]
                self._rows[key] = (fresh, new)
        self._blocks[block.dim] = fresh

    def expired(self, now: float) -> list[str]:
        """Drop the rows that expired by ``now``; their keys."""
        with self._lock:
            gone = [k for k, (block, row) in self._rows.items() if block.expires[row] <= now]
            for key in gone:
                self._discard(key)
            return gone

    def search(self, vector: Sequence[float], *, floor: float, now: float, text: str | None = None) -> list[str]:
        """Keys (in insertion order) of the unexpired entries whose cosine with ``vector`` is at least
        ``floor``; with ``text``, only those whose strict facts equal ``text``'s."""
        unit = _unit(vector)
        if unit is None:
            return []
        with self._lock:
            block = self._blocks.get(len(unit))
            if block is None:
                return []
            rows = block.above(unit, floor, now)
            if text is None or not rows:
                return [block.keys[r] for r in rows if block.keys[r] is not None]  # type: ignore[misc]
            wanted = strict_facts(query_facts(text))
            out = []
            for row in rows:
                if block.keys[row] is None:
                    continue
                if block.facts[row] is None:
                    block.facts[row] = strict_facts(query_facts(block.texts[row]))
                if block.facts[row] == wanted:
                    out.append(block.keys[row])
            return out  # type: ignore[return-value]


class PartitionCache:
    """The indexes of the partitions a shared store (SQLite, Redis) was searched in, least recently
    used dropped first; an index whose ``generation`` differs from the store's is rebuilt."""

    def __init__(self, max_partitions: int = 256) -> None:
        self.max_partitions = max_partitions
        self._lock = threading.Lock()
        self._indexes: OrderedDict[tuple[str, str], VectorIndex] = OrderedDict()

    def get(self, scope: str, context: str, generation: Any, fill: Callable[[VectorIndex], None]) -> VectorIndex:
        """The partition's index, brought up to date by ``fill`` (which reads the store from
        ``index.cursor`` on and moves it). Only lookups of the same partition wait for its fill (a
        first read of a large partition takes seconds); the other partitions' lookups go on."""
        with self._lock:
            index = self._indexes.get((scope, context))
            if index is None or index.generation != generation:
                index = self._indexes[(scope, context)] = VectorIndex(generation)
            self._indexes.move_to_end((scope, context))
            while len(self._indexes) > self.max_partitions:
                self._indexes.popitem(last=False)
        with index.filling:
            fill(index)
        return index

    def clear(self) -> None:
        with self._lock:
            self._indexes.clear()
