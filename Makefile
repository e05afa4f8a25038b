# One set of commands for the README, CI and hooks.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export BATON_HOME ?= $(HOME)/.baton

.PHONY: install dev stop test lint bench schemas clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e '.[server,dev,otel]'

# Set up, migrate, start the server and a worker, run the hello flow.
dev: install
	bash scripts/dev.sh

# The worker first (waiting for its drain, bounded), then the server; says how each ended.
stop:
	@bash scripts/stop.sh

test: install
	bash scripts/test.sh

lint: install
	$(BIN)/ruff check sdk schemas services tests bench
	$(BIN)/ruff format --check sdk schemas services tests bench
	$(BIN)/mypy
	$(BIN)/mypy tests bench

bench: install
	bash scripts/bench.sh

schemas: install
	$(BIN)/baton schemas export

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache
