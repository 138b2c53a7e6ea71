"""What a new user installs: the distribution name, its extras, and the error that names a missing extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_distribution_is_not_the_unrelated_agentcost_on_pypi_and_all_installs_every_extra():
    name = PROJECT["name"]
    assert name != "agentcost"  # `agentcost` on PyPI belongs to another project
    extras = PROJECT["optional-dependencies"]
    assert extras["all"] == [f"{name}[langchain,llamaindex,redis,postgres,otel]"]
    assert any(req.startswith("langchain>=") for req in extras["langchain"])  # the middleware's create_agent
    assert PROJECT["requires-python"] == ">=3.11"


def test_middleware_without_langchain_names_the_extra_to_install():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["langchain"] = None  # as if only langchain-core were installed
        try:
            import agentcost_langchain.middleware
        except ImportError as e:
            print(type(e).__name__)
            print(e)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    kind, message = out.stdout.splitlines()[:2]
    assert kind == "ImportError"  # not a bare ModuleNotFoundError about langchain.agents
    assert f'pip install "{PROJECT["name"]}[langchain]"' in message
