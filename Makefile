# Two entry points, each creating or reusing a local .venv:
#   make demo   install, then run the main job on the synthetic benchmark
#   make test   install, then lint (ruff), type-check (mypy) and run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test bench gpu-check install clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[test]'
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/adabench demo

# lint and format check (ruff), type check (mypy; config in pyproject.toml), then the tests
test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile  # test files spread over the cores

# Micro-benchmarks (pytest-benchmark), kept out of `make test`; then one training step of every method and
# stage at fp32 and at the automatic precision (tiny preset: a minute).
bench: $(BIN)/.installed
	mkdir -p .benchmarks && $(BIN)/python -m pytest -q -m bench --benchmark-json=.benchmarks/latest.json tests/benchmarks
	$(BIN)/adabench bench --train-step --precision fp32 --precision auto --batch 8 --warmup 2 --repeats 7 \
		--out .benchmarks/train-step.json

# On a GPU machine: every CUDA code path checked and the papers' shapes timed, within 8 minutes
# (adabench selfcheck; README "On a GPU"). Without a CUDA device: one line, exit 2 (never part of `make test`).
gpu-check: $(BIN)/.installed
	$(eval GPU_PROBE := $(shell $(BIN)/adabench selfcheck --device cuda --probe 2>&1 | tail -n 1))
	$(if $(filter error:%,$(firstword $(GPU_PROBE))),$(error $(GPU_PROBE)))
	$(BIN)/adabench selfcheck --device cuda --out gpu-check

clean:
	rm -rf $(VENV) .cache runs report .benchmarks gpu-check
