# Two commands for a new user (see README):
#   make book   - set up .venv, build the Jupyter Book, print where the HTML is
#   make test   - set up .venv, run ruff and the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,book]"
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check softres tests benchmarks

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_derivatives.py

clean:
	rm -rf _build _mathjax
