# Fresh machine: `make train` (set up + the main job) and `make test` (set up + the default test suite).
# Every command that starts or reaches Ray runs with token auth (docs/ray-2.60.md).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export RAY_AUTH_MODE := token

.PHONY: setup train test test-slow test-cluster test-slow-cluster test-all lint bench bench-gpu smoke-real-shape gpu-bundle gpu-check test-floor

setup: $(VENV)/.installed

# torch==2.13.0 first: pip then takes the CPU build from this machine's disk instead of a multi-GB CUDA wheel.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,offline]"
	touch $@

# The console is also kept in the run folder (tiny.yaml's output_dir), where tests/e2e/test_main_job.py reads it.
TINY_RUN := runs/tiny
TRAIN := $(VENV)/bin/sentiment-ray train --config jobs/configs/tiny.yaml
train: setup
	@mkdir -p $(TINY_RUN)
	@echo "$(TRAIN)   # console kept in $(TINY_RUN)/console.txt"
	@set -o pipefail; $(TRAIN) 2>&1 | tee $(TINY_RUN)/console.txt

# pytest-xdist workers, one per core (at most 4): test modules are handed out one at a time, slow ones first
# (tests/conftest.py; docs/testing.md). One test file alone: $(PY) -m pytest FILE.
TEST_WORKERS ?= $(shell n=$$(nproc); echo $$(( n < 4 ? n : 4 )))
XDIST := -n $(TEST_WORKERS) --dist loadgroup

test: setup
	$(PY) -m pytest $(XDIST)

test-slow: setup
	$(PY) -m pytest -m slow

test-cluster: setup
	$(PY) -m pytest -m cluster

# Both in one pytest run (one collection, one session Ray, one local S3): what CI runs after `make test`.
test-slow-cluster: setup
	$(PY) -m pytest $(XDIST) -m "slow or cluster"

test-all: setup
	$(PY) -m pytest -m ""

# The floors of pyproject.toml, tested: a venv of their own with the oldest transformers, accelerate and tokenizers
# the project supports (a CUDA image's: docs/gpu.md), then the unit suite, which holds the in-process training and
# predictor tests. torch stays 2.13.0, the CPU build on this machine's disk: an older torch is a multi-GB download.
FLOOR_VENV := .venv-floor
FLOORS := transformers==5.17.0 accelerate==1.15.0 "tokenizers>=0.23,<0.24"
test-floor:
	python3 -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install -q --upgrade pip
	$(FLOOR_VENV)/bin/python -m pip install -q torch==2.13.0
	$(FLOOR_VENV)/bin/python -m pip install -q -e ".[dev,offline]" $(FLOORS)
	$(FLOOR_VENV)/bin/python -c 'import transformers, accelerate; print("floor:", transformers.__version__, accelerate.__version__)'
	$(FLOOR_VENV)/bin/python -m pytest $(XDIST) tests/unit

lint: setup
	$(VENV)/bin/ruff check sentiment_ray tests jobs benchmarks scripts
	$(VENV)/bin/ruff format --check sentiment_ray tests jobs benchmarks scripts

# The benchmark suite (results/bench/*.json + .md). Run on an otherwise idle machine; about 45 minutes on 2 cores.
# Uses runs/tiny/model (from `make train`) as the tiny shape's model folder when it exists.
TINY_MODEL := $(if $(wildcard runs/tiny/model/sentiment_meta.json),--model-path runs/tiny/model,)
bench: setup
	$(PY) -m benchmarks.scoring $(TINY_MODEL)
	$(PY) -m benchmarks.training
	$(PY) -m benchmarks.ddp_phases
	$(PY) -m benchmarks.score_job $(TINY_MODEL) --layouts auto,1x2,2x1 --command
	$(PY) -m benchmarks.serve_load $(TINY_MODEL)
	$(if $(TINY_MODEL),$(PY) -m benchmarks.precision $(TINY_MODEL),@echo "precision bench skipped: make train first")

# The same benchmarks on a CUDA machine (peaks measured on the GPU). WORKERS=1,2 on a 2-GPU machine.
bench-gpu: setup
	$(PY) -m benchmarks.scoring --device cuda $(TINY_MODEL)
	$(PY) -m benchmarks.training --device cuda --workers $(or $(WORKERS),1)
	$(PY) -m benchmarks.serve_load --device cuda $(TINY_MODEL)

# Qwen2.5-1.5B's presets at their real 28-layer architecture (random weights) through the CLI: LoRA and QLoRA x both
# strategies x 1 and 2 workers, then predict / score / evaluate / serve / tune on the folders. Not in CI (too long);
# results/bench/real_shape.{json,md}. About 90 minutes on 2 cores; needs ~20 GB of memory for 2 LoRA workers.
smoke-real-shape: setup
	$(PY) -m benchmarks.real_shape

# The GPU check for an offline CUDA box without Ray (docs/gpu.md). `make gpu-bundle` here, where the package
# registries are: .gpu-bundle/ (<= 60 MB: bitsandbytes for the box's Python GPU_PYTHON, Qwen's BPE ranks, reviews).
# `make gpu-check` there: scripts/gpu_check.sh with the box's python3, from source (no venv, no install).
GPU_PYTHON ?= 3.12
gpu-bundle: setup
	rm -rf .gpu-bundle
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version $(GPU_PYTHON) \
		--platform manylinux_2_24_x86_64 -d .gpu-bundle/wheels "bitsandbytes>=0.50"
	$(PY) -m benchmarks.gpu_bundle .gpu-bundle

gpu-check:
	bash scripts/gpu_check.sh
