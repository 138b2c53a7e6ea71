"""Check that tests/response_cache/semantic_data.py's ``gptcache_default`` decides like GPTCache itself.

Runs real GPTCache 0.1.44 (its defaults: ``SearchDistanceEvaluation``, ``similarity_threshold=0.8``, a faiss
index, a SQLite store) once per labelled pair: put pair ``a``'s last message, get pair ``b``'s, with the
committed vectors as the embedding function. Not run in CI (gptcache and faiss-cpu are dev dependencies
since tests/benchmarks/bench_response_cache.py uses them, so the dev virtualenv runs it too), or in a
scratch virtualenv:

    python -m venv /tmp/gc && /tmp/gc/bin/pip install gptcache==0.1.44 faiss-cpu sqlalchemy numpy
    OMP_NUM_THREADS=1 /tmp/gc/bin/python tests/data/check_gptcache_rule.py > /tmp/gptcache_hits.json

It prints {pair id: hit} as JSON. On 2026-12-04 it served 416 of the 439 pairs, each decision the same as
``gptcache_default`` (compare with ``python -c`` over ``load_pairs()``).
"""

from __future__ import annotations

import base64
import json
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
from gptcache import Cache
from gptcache.adapter.api import get, put
from gptcache.manager import CacheBase, VectorBase, get_data_manager
from gptcache.processor.pre import get_prompt
from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation

HERE = Path(__file__).parent


def main() -> None:
    vectors = {}
    for line in (HERE / "semantic_vectors.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["kind"] == "query":
            raw = base64.b64decode(row["f32"])
            vectors[row["text"]] = np.array(struct.unpack(f"<{len(raw) // 4}f", raw), dtype="float32")
    hits = {}
    for name in ("semantic_pairs.jsonl", "semantic_pairs_multiturn.jsonl"):
        for line in (HERE / name).read_text(encoding="utf-8").splitlines():
            pair = json.loads(line)
            folder = tempfile.mkdtemp(prefix="gptcache-")
            cache = Cache()
            cache.init(
                pre_embedding_func=get_prompt,
                embedding_func=lambda text, **_: vectors[text],
                data_manager=get_data_manager(
                    CacheBase("sqlite", sql_url=f"sqlite:///{folder}/cache.db"),
                    VectorBase("faiss", dimension=384, index_path=f"{folder}/faiss.index"),
                ),
                similarity_evaluation=SearchDistanceEvaluation(),
            )
            put(pair["a"]["text"], "answer-a", cache_obj=cache)
            hits[pair["id"]] = get(pair["b"]["text"], cache_obj=cache) == "answer-a"
    json.dump(hits, sys.stdout, indent=0)


if __name__ == "__main__":
    main()
