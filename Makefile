# Two commands for a new user (see README):
#   make book   - set up .venv, execute every chapter, build the Jupyter Book, print where the HTML is
#   make test   - set up .venv, run ruff and the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MATHJAX := _mathjax/mathjax/tex-mml-chtml.js
# The execution cache keys on cell source only; this hash makes it depend on the package too.
HASH_INPUTS := $(shell find softres _ext _static -name "*.py" -o -name "*.toml" -o -name "*.css" | sort) pyproject.toml constraints.txt _config.yml

.PHONY: test lint book browser-test figures bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,book]"
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check softres tests benchmarks

test: lint
	$(BIN)/python -m pytest

$(MATHJAX): $(STAMP)
	rm -rf _mathjax && mkdir -p _mathjax
	cp -r "$$($(BIN)/python -c 'import mathjax, pathlib; print(pathlib.Path(mathjax.__path__[0]) / "static/mathjax/es5")')" _mathjax/mathjax

book: $(STAMP) $(MATHJAX)
	@hash=$$(cat $(HASH_INPUTS) | sha256sum | cut -c1-16); \
	if [ "$$(cat _build/.softres-hash 2>/dev/null)" != "$$hash" ]; then \
		echo "softres or its pins changed: executing every chapter from clean"; rm -rf _build; \
	fi; \
	env -u MPLBACKEND SOFTRES_DATA_CACHE=$(CURDIR)/_build/.softres-data \
		$(BIN)/jupyter-book build . --quiet --warningiserror --nitpick --keep-going && \
	$(BIN)/python -m softres check-build _build/html && \
	echo "$$hash" > _build/.softres-hash
	@echo "The book is at $(CURDIR)/_build/html/index.html"

# Opens every page of the built book in headless Chromium (Debian's chromium) and measures overflow.
browser-test: $(STAMP)
	SOFTRES_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q tests/test_browser.py

figures: $(STAMP)
	$(BIN)/python -m softres figures --out figures

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_derivatives.py

clean:
	rm -rf _build _mathjax figures
