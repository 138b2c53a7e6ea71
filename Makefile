# Two commands for a fresh machine: `make demo` (example agent + cost report) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

# Offline machines: tiktoken reads its encodings from a local cache when one sits beside the checkout.
ifneq ($(wildcard ../shared/tiktoken-cache),)
export TIKTOKEN_CACHE_DIR ?= $(abspath ../shared/tiktoken-cache)
endif

$(VENV)/.installed: pyproject.toml .ci/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c .ci/constraints.txt -e ".[all,dev]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) examples/quickstart.py

test: $(VENV)/.installed
	$(PY) -m pytest

bench: $(VENV)/.installed
	bash tests/benchmarks/run_all.sh

.PHONY: install demo test bench
