# Fresh machine: `make train` (set up + the main job) and `make test` (set up + the default test suite).
# Every command that starts or reaches Ray runs with token auth (shared/RAY-2.60-NOTES.md).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export RAY_AUTH_MODE := token

.PHONY: setup train test test-slow test-cluster test-all lint

setup: $(VENV)/.installed

# torch==2.13.0 first: pip then takes the CPU build from this machine's disk instead of a multi-GB CUDA wheel.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

train: setup
	$(VENV)/bin/sentiment-ray train --config jobs/configs/tiny.yaml

test: setup
	$(PY) -m pytest

test-slow: setup
	$(PY) -m pytest -m slow

test-cluster: setup
	$(PY) -m pytest -m cluster

test-all: setup
	$(PY) -m pytest -m ""

lint: setup
	$(VENV)/bin/ruff check sentiment_ray tests jobs
	$(VENV)/bin/ruff format --check sentiment_ray tests jobs
