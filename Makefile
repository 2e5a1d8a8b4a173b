# Two commands set everything up from nothing: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck contracts check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nightcrew demo

# The suite starts `nightcrew` hundreds of times; an editable install leaves
# src/ uncompiled and PYTHONDONTWRITEBYTECODE (often set) would make every one
# of those processes compile it again: compile it once, first.
test: $(STAMP)
	$(BIN)/python -m compileall -q src >/dev/null
	$(BIN)/python -m pytest -n auto --dist worksteal -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

# What CI runs: lint, types, the import contracts, then the whole suite.
check: lint typecheck contracts test

bench: $(STAMP)
	$(BIN)/python bench/overhead.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
