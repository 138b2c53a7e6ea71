"""Load ``tests/langchain/providers.py`` (the mock provider endpoints) once, under a unique module
name, so a helper module of another test folder can never shadow it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_NAME = "agentcost_tests_langchain_providers"


def load_providers() -> ModuleType:
    module = sys.modules.get(_NAME)
    if module is None:
        spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).parent / "langchain" / "providers.py")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[_NAME] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module
