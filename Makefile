# One entry point for people and CI. `make book` and `make test` set up the
# virtual environment themselves, so each works on a fresh clone.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Notebooks run with book/ as their working directory, so the data root must be
# absolute. An offline copy beside the checkout (../shared/data) is used when present.
ifdef GENVAE_DATA
export GENVAE_DATA := $(abspath $(GENVAE_DATA))
else ifneq ($(wildcard ../shared/data/MNIST),)
export GENVAE_DATA := $(abspath ../shared/data)
endif
ifdef GENVAE_CACHE
export GENVAE_CACHE := $(abspath $(GENVAE_CACHE))
endif
# Kernels must pick their inline backend themselves: a global MPLBACKEND=Agg
# would silently drop every figure from the pages.
unexport MPLBACKEND
# Make runs batch jobs (the book build, nbval, reproduce): no ipywidgets, whoever started make. A widget made
# while the book builds would put its state and a CDN script into the page (see genvae/frontend.py).
export GENVAE_WIDGETS := 0

.PHONY: help venv book test unit nbval readable book-quick quick-chapters quick-sphinx browser browser-deps book-fashion book-fashion-quick reproduce benchmarks clean

help:
	@echo "make book        set up, then build the book in full mode -> _build/html/index.html"
	@echo "make test        set up, then run every test: unit tests, quick book build, the chapters as Jupyter shows them, nbval, browser"
	@echo "make nbval       rerun the chapters of the quick build and compare every output with that run (after make book-quick)"
	@echo "make browser     open every page of the quick build in headless Chromium; screenshots in _build/screenshots"
	@echo "make book-fashion  the whole book on Fashion-MNIST (full mode) -> _build/fashion/_build/html/index.html"
	@echo "make reproduce   train every model the book uses (full mode) into the cache"
	@echo "make benchmarks  measure speed and memory; writes benchmarks/RESULTS.md (about 20 min)"
	@echo "make clean       remove build outputs (keeps the venv and the model cache)"

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

# First train whatever is missing, with progress in the terminal (which model, how
# many are left, an estimated time); then run the chapters, which only load weights, and build.
# Again with nothing changed, little runs: `genvae chapters` reuses each chapter whose notebook, genvae code,
# mode, data set and trained weights are those of its last run (--rerun runs them all), and touches each one
# it runs, so Sphinx (incremental, no --all) reads again only those and any page whose source changed. A
# failed build forgets what it read (its doctrees), so the next build reads every page and -W sees every warning.
book: $(STAMP)
	$(BIN)/genvae reproduce
	$(BIN)/genvae chapters --out _build/executed --build-output .
	$(BIN)/jupyter-book build . -W --keep-going || { rm -rf _build/.doctrees; exit 1; }
	@echo "book: $(CURDIR)/_build/html/index.html"

reproduce: $(STAMP)
	$(BIN)/genvae reproduce

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/run.py

# Tests run in TEST_JOBS processes (pytest-xdist) of one thread each: small models do not keep two
# threads busy, and two processes side by side finish sooner than one with two threads (measured in
# CI: see the issue notes). Unit tests are rebalanced as workers free up (--dist worksteal: the chapter
# runs take 10-50 s each); nbval keeps each notebook whole in one process (--dist loadfile).
TEST_JOBS ?= 2
QUICK_OUT := _build/quick
EXECUTED := $(QUICK_OUT)/executed

unit: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_JOBS) --dist worksteal tests

# The quick book: train what is missing, execute every chapter as Jupyter does ($(EXECUTED), TEST_JOBS kernels of
# one thread side by side), then build, which renders those runs (their jupyter-cache) instead of executing again.
book-quick: quick-chapters
	$(MAKE) --no-print-directory quick-sphinx

quick-chapters: $(STAMP)
	GENVAE_QUICK=1 $(BIN)/genvae reproduce
	GENVAE_QUICK=1 OMP_NUM_THREADS=1 $(BIN)/genvae chapters --jobs $(TEST_JOBS) --out $(EXECUTED) --build-output $(QUICK_OUT)

quick-sphinx: $(STAMP)
	GENVAE_QUICK=1 $(BIN)/jupyter-book build . --all -W --keep-going --path-output $(QUICK_OUT)

# The chapters as a learner's Jupyter shows them (book_tests/, on the runs of book-quick): no role that only the book
# build resolves, no mention of our source outline, and no number on a page that the executed notebook does not show.
readable: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider book_tests

# nbval reruns every chapter that book-quick executed and compares each output with that run: on one CPU the book's
# training and evaluation are bit-identical, so any difference (an unseeded draw, a time, an address) fails. The
# sanitize file and the nbval-ignore-output tags (each with its reason in the cell) cover what legitimately varies.
nbval: $(STAMP)
	GENVAE_QUICK=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest -p no:cacheprovider -n $(TEST_JOBS) --dist loadfile \
	  --nbval --nbval-sanitize-with book_tests/nbval_sanitize.cfg $(EXECUTED)

book-fashion: $(STAMP)
	GENVAE_DATASET=fashion-mnist $(BIN)/genvae reproduce
	GENVAE_DATASET=fashion-mnist $(BIN)/genvae chapters --out _build/fashion/executed --build-output _build/fashion
	GENVAE_DATASET=fashion-mnist $(BIN)/jupyter-book build . -W --keep-going --path-output _build/fashion \
	  || { rm -rf _build/fashion/_build/.doctrees; exit 1; }
	@echo "book: $(CURDIR)/_build/fashion/_build/html/index.html"

book-fashion-quick: $(STAMP)
	GENVAE_QUICK=1 GENVAE_DATASET=fashion-mnist $(BIN)/genvae reproduce
	GENVAE_QUICK=1 GENVAE_DATASET=fashion-mnist $(BIN)/genvae chapters --out _build/fashion-quick/executed --build-output _build/fashion-quick
	GENVAE_QUICK=1 GENVAE_DATASET=fashion-mnist $(BIN)/jupyter-book build . --all -W --keep-going --path-output _build/fashion-quick

# Every page of the quick build opened in headless Chromium (one browser session, browser_tests/): console
# errors, images, maths typeset offline, GIFs, internal links, outputs without tracebacks or warnings, nothing
# wider than the content column; a screenshot of each page in _build/screenshots/. Needs Debian's chromium,
# chromium-driver and fonts-dejavu-core (.ci/browser-deps installs them with apt when missing) and a build
# (`make book-quick`): without one it fails, never skips.
browser-deps:
	bash .ci/browser-deps

browser: $(STAMP) browser-deps
	$(BIN)/python -m pytest browser_tests

# The browser's system packages come first, so a machine that cannot get them fails in seconds, not after the build.
# Once the chapters have run, the Sphinx build (one process) and nbval (which reruns the executed chapters) run
# side by side: each only reads the runs, and together they keep both cores busy (Sphinx alone uses one). Each
# one's output is printed whole when it ends (--output-sync). readable compares the pages with the executed
# chapters and the browser opens the pages, so both come after the build.
test: browser-deps unit quick-chapters
	$(MAKE) --no-print-directory -j 2 --output-sync=target quick-sphinx nbval
	$(MAKE) --no-print-directory readable
	$(MAKE) --no-print-directory browser

clean:
	rm -rf _build
