# loaphuong — common tasks. Everything runs from the repo's .venv, which `make setup` creates.
VENV := .venv
BIN  := $(VENV)/bin
# Test processes (pytest-xdist): the suite mostly waits on brokers, agents, Icecast and browsers, so four keep a
# 2-core machine busy. The one place this number lives; pyproject.toml and the docs refer to it.
PYTEST_WORKERS ?= 4

.PHONY: setup demo test lint bench clean

setup:
	bash scripts/setup.sh

demo: setup
	$(BIN)/loaphuong demo

test:
	bash scripts/setup.sh --test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS)

lint:
	$(BIN)/ruff check .
	$(BIN)/mypy

bench:
	$(BIN)/python bench/agent_footprint.py

clean:
	rm -rf var/ build/ dist/ .pytest_cache/ .mypy_cache/ .ruff_cache/ .hypothesis/ *.egg-info/
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
