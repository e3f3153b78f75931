# The two commands: `make run` and `make test`. Everything else is a helper of theirs;
# `make help` lists them all.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_ARTICLES ?= 1000
TEST_JOBS ?= auto
# Where `make run` serves: NEWSDESK_BIND when set, else 127.0.0.1:$(PORT).
PORT ?= 8000
BIND ?= $(or $(NEWSDESK_BIND),127.0.0.1:$(PORT))

.DEFAULT_GOAL := help
.PHONY: help run test lint install install-test openapi bench clean

## List the targets.
help:
	@awk '/^## /{if (!text) text = substr($$0, 4); next} /^[a-z-]+:/{if (text) printf "  %-13s %s\n", substr($$1, 1, length($$1) - 1), text; text = ""}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The project is installed in editable mode, so only a change of pyproject.toml (dependencies,
# the `newsdesk` command) needs another install: each stamp is newer than the pyproject.toml
# it was installed from.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

## Create the venv and install (again only when pyproject.toml changed).
install: $(VENV)/.installed

## The same, with the test extras (pytest, schemathesis, ruff).
install-test: $(VENV)/.installed-test

## Serve on NEWSDESK_BIND, else 127.0.0.1:PORT (8000), with demo data and the worker.
## It installs, creates the database, loads demo data if it is empty, and runs the background
## worker beside the server; stopping the server (Ctrl-C) stops the worker too.
run: install
	$(BIN)/newsdesk db init
	$(BIN)/newsdesk demo --if-empty --articles $(DEMO_ARTICLES)
	$(BIN)/newsdesk worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(BIN)/newsdesk serve --bind $(BIND)

## Run the suite on SQLite, and on PostgreSQL too with NEWSDESK_TEST_POSTGRES_URL.
## The last lines say how many tests passed on each database. Only failures and errors are
## listed one by one (-rfE); skips are counted by reason in those last lines. Tests run in
## TEST_JOBS processes (pytest-xdist; default: one per CPU).
test: install-test
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadgroup -rfE $(PYTEST_ARGS)

## ruff: the linter and the formatter's check (CI runs this before the tests).
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Rewrite openapi.yaml from the code.
openapi: install
	$(BIN)/newsdesk openapi > openapi.yaml

## The benchmarks of bench/run.py (100k articles; needs wrk).
bench: install-test
	$(BIN)/python bench/run.py

## Remove the venv and pytest's cache.
clean:
	rm -rf $(VENV) .pytest_cache
