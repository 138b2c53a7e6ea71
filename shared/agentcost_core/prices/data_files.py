"""Newer genai-prices data kept under the user's data folder (``agentcost prices update``).

The folder is ``$AGENTCOST_DATA_DIR`` when set, else ``$XDG_DATA_HOME/agentcost``, else
``~/.local/share/agentcost``. It holds ``genai-prices.json`` (genai-prices' published
``data.json``, as fetched) and ``genai-prices.meta.json`` (where and when it came from). Data is
validated (genai-prices' own loader, then compiled) before it replaces the kept file.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import PriceFileError

__all__ = ["DEFAULT_URL", "STALE_DAYS", "data_dir", "load_kept_data", "update_data"]

#: The file genai-prices' own updater (``genai_prices.UpdatePrices``) fetches.
DEFAULT_URL = "https://raw.githubusercontent.com/pydantic/genai-prices/refs/heads/main/prices/new_data/v2/data.json"
DATA_FILE = "genai-prices.json"
META_FILE = "genai-prices.meta.json"
#: ``agentcost prices`` warns when the data in use is older than this.
STALE_DAYS = 30
_MAX_BYTES = 64 * 1024 * 1024


def data_dir() -> Path:
    env = os.environ.get("AGENTCOST_DATA_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "agentcost"


def load_kept_data() -> tuple[Any, dict[str, Any]] | None:
    """(raw data, info) of the kept file, or None when there is none (the packaged data is used)."""
    folder = data_dir()
    path = folder / DATA_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text("utf-8"))
        meta = json.loads((folder / META_FILE).read_text("utf-8")) if (folder / META_FILE).is_file() else {}
    except (OSError, json.JSONDecodeError) as e:
        raise PriceFileError(f"{path}: unreadable kept price data ({e}); run `agentcost prices update` again") from None
    fetched = meta.get("fetched") or path.stat().st_mtime
    info = {"origin": f"genai-prices data {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(fetched))}",
            "path": str(path), "since": fetched, "url": meta.get("url")}  # fmt: skip
    return raw, info


def _read(url: str | None, file: str | os.PathLike[str] | None, timeout: float) -> bytes:
    if file is not None:
        try:
            return Path(file).read_bytes()
        except OSError as e:
            raise PriceFileError(f"cannot read {file}: {e}") from None
    target = url or DEFAULT_URL
    if not target.startswith(("https://", "http://")):
        raise PriceFileError(f"--url must be an http(s) URL, got {target!r}")
    try:
        with urllib.request.urlopen(target, timeout=timeout) as r:
            body = r.read(_MAX_BYTES + 1)
    except OSError as e:
        raise PriceFileError(f"cannot fetch {target}: {e}") from None
    if len(body) > _MAX_BYTES:
        raise PriceFileError(f"{target}: more than {_MAX_BYTES} bytes; not price data")
    return body


def update_data(
    *, url: str | None = None, file: str | os.PathLike[str] | None = None, timeout: float = 30
) -> dict[str, Any]:
    """Fetch genai-prices data (its published file by default), validate it and keep it. Returns a
    summary: {"path", "providers", "models", "url"}. Nothing is replaced when validation fails."""
    from .genai import GenaiPrices, load_providers

    body = _read(url, file, timeout)
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise PriceFileError(f"price data is not JSON ({e})") from None
    providers = load_providers(raw)
    compiled = GenaiPrices.build(providers, origin="check")
    if not compiled.entries:
        raise PriceFileError("price data has no model with per-token prices")
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    source = str(file) if file is not None else (url or DEFAULT_URL)
    meta = {"url": source, "fetched": time.time(), "providers": len(providers), "models": len(compiled.entries)}
    for name, content in ((DATA_FILE, body), (META_FILE, json.dumps(meta).encode())):
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, folder / name)
    return {"path": str(folder / DATA_FILE), **meta}
