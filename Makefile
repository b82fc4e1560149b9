# CareSync developer tasks. `make run` starts the platform with demo data; `make test` runs every check.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The environment here sets PYTHONDONTWRITEBYTECODE=1, which makes every Python start recompile the whole
# stack from source. Export it empty (= off) so .pyc files are written and reused.
export PYTHONDONTWRITEBYTECODE :=

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
CARESYNC := $(VENV)/bin/caresync
STAMP := $(VENV)/.caresync-installed

HOST ?= 127.0.0.1
PORT ?= 8000

# pytest options for both runs (SQLite, PostgreSQL): the whole suite, browser (e2e) and schema fuzzing
# included. tests/conftest.py supports pytest-xdist (a temp var dir and, on PostgreSQL, a database per
# worker), so two workers by default.
PYTEST_ARGS ?= -q -n 2
# The PostgreSQL run skips the pure tests (marked no_db: they never touch the database, so a second run
# would only repeat the SQLite run's result).
PYTEST_PG_ARGS ?= $(PYTEST_ARGS) -m 'not no_db'
PYTEST := $(PY) -m pytest

# Debian packages the app itself runs with (PDF fonts and layout, OCR; espeak-ng speaks the demo's sample
# consultation), and the ones the full test suite adds (the PostgreSQL run, Redis paths, browser tests,
# reading PDFs back).
RUNTIME_DEB_PACKAGES := fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0 tesseract-ocr tesseract-ocr-eng \
	ghostscript unpaper pngquant espeak-ng
DEB_PACKAGES ?= $(RUNTIME_DEB_PACKAGES) postgresql redis-server chromium poppler-utils
LINT_PATHS := src tests bench scripts

.PHONY: help install run runtime-deps system-deps test test-sqlite test-postgres test-e2e lint format typecheck bench vendor \
	clean distclean

help:
	@echo "make run          start CareSync with demo data on http://$(HOST):$(PORT) (web server + job worker)"
	@echo "make test         system packages, install, lint, typecheck, pytest on SQLite and on PostgreSQL"
	@echo "make install      create .venv and install CareSync with its test tools (quick when up to date)"
	@echo "make system-deps  install the Debian packages the tests need: $(DEB_PACKAGES)"
	@echo "make lint         ruff check + ruff format --check     (make format rewrites the files)"
	@echo "make typecheck    mypy"
	@echo "make test-sqlite  pytest on SQLite only;  make test-postgres: pytest on a throwaway PostgreSQL"
	@echo "make bench        run every bench/*.py (each prints one JSON result)"
	@echo "make vendor       refresh the pinned front-end assets from the npm registry"
	@echo "make clean        remove caches and the test database;  make distclean also removes .venv and var/"

# --- install -----------------------------------------------------------------------------------------------
# Re-runs pip only when pyproject.toml is newer than the stamp (or the venv is missing).
# PyTorch goes in first, pinned to its CPU build by constraints.txt (see there).
$(STAMP): pyproject.toml constraints.txt
	@if [ ! -x "$(PY)" ]; then \
		[ -n "$(PYTHON)" ] || { echo "error: python3 not found" >&2; exit 1; }; \
		"$(PYTHON)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
			|| { echo "error: CareSync needs Python 3.11; $(PYTHON) is $$("$(PYTHON)" -V 2>&1)" >&2; exit 1; }; \
		echo "creating $(VENV) with $$("$(PYTHON)" -V)"; \
		"$(PYTHON)" -m venv "$(VENV)"; \
	fi
	$(PY) -m pip install --quiet --progress-bar off -c constraints.txt torch
	$(PY) -m pip install --quiet --progress-bar off -c constraints.txt -e '.[test]'
	@touch "$(STAMP)"
	@echo "installed CareSync into $(VENV)"

install: $(STAMP)

# --- run ---------------------------------------------------------------------------------------------------
run: runtime-deps install
	$(CARESYNC) migrate
	$(CARESYNC) demo --if-empty
	@echo
	@echo "CareSync: http://$(HOST):$(PORT)   (API docs: http://$(HOST):$(PORT)/api/docs; Ctrl-C stops it)"
	@$(CARESYNC) worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null || true; wait $$worker 2>/dev/null || true' EXIT; \
	trap 'exit 130' INT; trap 'exit 143' TERM; \
	$(CARESYNC) serve --host $(HOST) --port $(PORT)

# --- system packages ---------------------------------------------------------------------------------------
# As root with apt-get: install what is missing (apt-get update first only if the lists are missing or more
# than a day old, and once more if the install fails on stale lists). Otherwise: say what is missing, go on.
runtime-deps: DEB_PACKAGES = $(RUNTIME_DEB_PACKAGES)
runtime-deps: system-deps

system-deps:
	@if ! command -v dpkg >/dev/null 2>&1; then \
		echo "system-deps: not a Debian system; make sure these are installed: $(DEB_PACKAGES)"; exit 0; \
	fi; \
	missing=""; \
	for p in $(DEB_PACKAGES); do \
		dpkg -s "$$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "system-deps: all present ($(DEB_PACKAGES))"; exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "system-deps: WARNING missing Debian packages:$$missing"; \
		echo "system-deps: install them as root: apt-get install -y --no-install-recommends$$missing"; \
		echo "system-deps: continuing; tests that need them will fail"; exit 0; \
	fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	lists=/var/lib/apt/lists; \
	if ! ls $$lists/*_Packages* >/dev/null 2>&1 || [ -z "$$(find $$lists -maxdepth 0 -mmin -1440)" ]; then \
		apt-get update; \
	fi; \
	echo "system-deps: installing$$missing"; \
	apt-get install -y --no-install-recommends $$missing \
		|| { apt-get update && apt-get install -y --no-install-recommends $$missing; }

# --- checks ------------------------------------------------------------------------------------------------
test: system-deps install lint typecheck test-sqlite test-postgres

lint: install
	@rc=0; \
	$(VENV)/bin/ruff check $(LINT_PATHS) || rc=1; \
	$(VENV)/bin/ruff format --check $(LINT_PATHS) || rc=1; \
	exit $$rc

format: install
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)

typecheck: install
	$(VENV)/bin/mypy

test-sqlite: install
	@echo "== pytest on SQLite"
	env -u CARESYNC_TEST_DATABASE_URL $(PYTEST) $(PYTEST_ARGS)

# A throwaway cluster on 127.0.0.1:55432 (scripts/pg-test.sh), stopped and deleted whatever the outcome.
test-postgres: system-deps install
	@echo "== pytest on PostgreSQL"
	@trap 'bash scripts/pg-test.sh stop' EXIT; \
	bash scripts/pg-test.sh start; \
	url="$$(bash scripts/pg-test.sh url)"; \
	echo "CARESYNC_TEST_DATABASE_URL=$$url $(PYTEST) $(PYTEST_PG_ARGS)"; \
	CARESYNC_TEST_DATABASE_URL="$$url" $(PYTEST) $(PYTEST_PG_ARGS)

# Only the browser and fuzz suites, on SQLite (they are also part of test-sqlite and test-postgres).
test-e2e: system-deps install
	@echo "== browser and fuzz tests (SQLite)"
	env -u CARESYNC_TEST_DATABASE_URL $(PYTEST) -q -m 'e2e or fuzz'

# --- other -------------------------------------------------------------------------------------------------
bench: install
	@rc=0; \
	for f in bench/*.py; do \
		echo "== $$f" >&2; \
		$(PY) "$$f" || { echo "$$f failed" >&2; rc=1; }; \
	done; \
	exit $$rc

vendor:
	bash scripts/vendor.sh

clean:
	-@bash scripts/pg-test.sh stop
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist test-results src/*.egg-info
	find src tests bench -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) var
