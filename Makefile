# Two commands for a new user (see README):
#   make book   - set up .venv, execute every chapter, build the Jupyter Book, print where the HTML is
#   make test   - set up .venv, run ruff and the test suite
# Rerunning and citing (README):
#   make notebook CHAPTER=psd - execute a chapter into notebooks/psd.ipynb (figures and numbers shown; all if no CHAPTER)
#   make lab                  - JupyterLab on the chapters as notebooks (installs the `notebook` extra on first use)
#   make pdf                  - the whole book as one PDF, _build/pdf/softres.pdf (needs Debian's chromium)
#   make dist                 - dist/softres-<version>-<commit>.zip: site, PDF, notebooks, figure data, CITATION.cff
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MATHJAX := _mathjax/mathjax/tex-mml-chtml.js
# The execution cache keys on cell source only; this hash makes it depend on the package too.
HASH_INPUTS := $(shell find softres _static -name "*.py" -o -name "*.toml" -o -name "*.css" | sort) pyproject.toml constraints.txt _config.yml

NOTEBOOK_STAMP := $(VENV)/.notebook
BOOK_ENV := env -u MPLBACKEND SOFTRES_DATA_CACHE=$(CURDIR)/_build/.softres-data
CHAPTER ?=
LAB_FLAGS ?=  # e.g. LAB_FLAGS="--no-browser --allow-root" in a container

.PHONY: test lint book figures bench clean notebook lab pdf dist browser-test

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,book,data,dask,bench,fast]"
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

# Opens every page of the built book in headless Chromium (Debian's chromium) and measures overflow,
# then checks the printed PDF (CI runs this after make book and make pdf).
browser-test: $(STAMP)
	SOFTRES_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q tests/test_browser.py tests/test_dist.py

figures: $(STAMP)
	$(BIN)/python -m softres figures --out figures

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_derivatives.py

notebook: $(STAMP)
	$(BOOK_ENV) $(BIN)/python -m softres notebook $(CHAPTER) --out notebooks

# JupyterLab is heavy: installed into .venv only by this target. Chapters open as notebooks through
# jupytext (saved back to the .md only, no .ipynb beside them; checkpoints go to _build/).
$(NOTEBOOK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,book,data,dask,bench,fast,notebook]"
	mkdir -p $(VENV)/share/jupyter/lab/settings
	echo '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}}}' \
		> $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $(NOTEBOOK_STAMP)

lab: $(NOTEBOOK_STAMP)
	$(BOOK_ENV) SOFTRES_SHOW_FIGURES=1 $(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR) --ContentsManager.preferred_dir=book \
		--ServerApp.contents_manager_class=jupytext.TextFileContentsManager \
		--ContentsManager.formats=md:myst --FileCheckpoints.checkpoint_dir=$(CURDIR)/_build/lab-checkpoints $(LAB_FLAGS)

pdf: book
	$(BOOK_ENV) $(BIN)/jupyter-book build . --builder singlehtml --quiet --warningiserror --nitpick --keep-going
	$(BIN)/python -m softres pdf _build/singlehtml _build/pdf/softres.pdf

dist: pdf
	rm -rf _build/notebooks
	$(BOOK_ENV) $(BIN)/python -m softres notebook --out _build/notebooks
	$(BIN)/python -m softres dist --out dist --site _build/html --pdf _build/pdf/softres.pdf \
		--notebooks _build/notebooks --figure-data _build/html/figure-data CITATION.cff LICENSE README.md

clean:
	rm -rf _build _mathjax figures notebooks dist
