"""Every ```python block of README.md runs as written: offline, each in a fresh interpreter (a fresh
namespace, nothing shared between blocks) in a temporary working directory, so its ledgers land there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _python_blocks() -> list[tuple[str, str]]:
    """(the heading above the block, its code), in README order."""
    blocks = []
    for m in re.finditer(r"^```python\n(.*?)^```", README, flags=re.S | re.M):
        headings = re.findall(r"^#+ (.+)$|^\*\*(.+?)\*\*", README[: m.start()], flags=re.M)
        title = next((h or b for h, b in reversed(headings)), "top")
        blocks.append((title, m.group(1)))
    return blocks


BLOCKS = _python_blocks()


def test_readme_has_the_python_blocks_this_test_runs():
    titles = [t for t, _ in BLOCKS]
    assert len(BLOCKS) >= 6, titles
    assert {"LangChain", "LlamaIndex", "Memory: keep every call inside a token budget",
            "Routing: the cheapest tier that can do each step"} <= set(titles)  # fmt: skip


@pytest.mark.parametrize("code", [code for _, code in BLOCKS], ids=[re.sub(r"\W+", "-", t)[:40] for t, _ in BLOCKS])
def test_readme_python_block_runs_as_written(code, tmp_path):
    pytest.importorskip("langchain.agents")
    pytest.importorskip("llama_index.core")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AGENTCOST_LEDGER")}
    (tmp_path / "block.py").write_text(code, encoding="utf-8")
    out = subprocess.run([sys.executable, "block.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert out.returncode == 0, f"README block failed:\n{code}\n--- stderr ---\n{out.stderr[-3000:]}"


def test_readme_install_line_names_this_distribution():
    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    assert f'pip install "{name}[langchain]"' in README
    assert 'pip install -e ".[langchain]"' in README  # from a checkout
    assert 'pip install "agentcost[' not in README  # `agentcost` on PyPI is another project
    assert "Python ≥ 3.11" in README
