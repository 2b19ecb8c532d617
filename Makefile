# Every target creates or reuses .venv itself: nothing has to run before it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pytest-xdist workers: one per core of the 2-core machines this project is measured on. Test
# files are the unit of distribution (--dist loadfile): a module's shared fixture runs once.
JOBS   ?= 2
PYTEST := $(BIN)/python -m pytest -n $(JOBS) --dist loadfile --durations=30

.DEFAULT_GOAL := help
.PHONY: help install loadtest test test-e2e test-unit test-integration lint mutation gate history report clean size

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml requirements/lock.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)  ## create or reuse .venv and install the project (idempotent)

loadtest: $(STAMP)  ## both designs under the same load; report in reports/latest/
	$(BIN)/harness loadtest $(ARGS)

size: $(STAMP)  ## memory request and limit per container, proven under a kernel limit (docs/sizing.md)
	$(BIN)/harness size $(ARGS)

test: $(STAMP)  ## unit tests and the integration tests that take seconds (a few minutes)
	$(PYTEST) -m "not e2e" $(ARGS)

test-e2e: $(STAMP)  ## the real end-to-end runs: loadtests, live gates, capacity, Chromium, the wheel
	$(PYTEST) -m "e2e and not serial" $(ARGS)
	$(BIN)/python -m pytest --durations=30 -m "e2e and serial" $(ARGS)

test-unit: $(STAMP)  ## fast, pure tests only
	$(BIN)/python -m pytest tests/unit $(ARGS)

test-integration: $(STAMP)  ## tests that start real processes
	$(BIN)/python -m pytest tests/integration $(ARGS)

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

mutation: $(STAMP)  ## mutmut on the pure modules changed since the last run (ARGS=--full: all); fails under 90% killed
	$(BIN)/python scripts/mutation.py $(ARGS)

gate: $(STAMP)  ## probe both designs and compare with baselines/ci.json
	$(BIN)/harness gate $(ARGS)

history: $(STAMP)  ## trend page of the runs in reports/ over commits (docs/history.md)
	$(BIN)/harness history reports $(ARGS)

clean:  ## remove generated reports (keeps .venv)
	rm -rf reports/20* reports/latest reports/history.* reports/history-figures
