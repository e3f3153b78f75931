# The two commands: `make run` and `make test`. Everything else is a helper of theirs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_ARTICLES ?= 1000
BIND ?= 127.0.0.1:8000

.PHONY: run test lint install install-test openapi bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

## Create the venv, install, create the database, load demo data if empty, serve on :8000
## with the background worker (webhook deliveries, related articles) beside the server; the
## worker stops when the server does.
run: install
	$(BIN)/newsdesk db init
	$(BIN)/newsdesk demo --if-empty --articles $(DEMO_ARTICLES)
	$(BIN)/newsdesk worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(BIN)/newsdesk serve --bind $(BIND)

## Create the venv, install with test extras, run the suite (PostgreSQL too when
## NEWSDESK_TEST_POSTGRES_URL is set).
test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## ruff: the linter and the formatter's check (CI runs this before the tests).
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Rewrite openapi.yaml from the code.
openapi: install
	$(BIN)/newsdesk openapi > openapi.yaml

bench: install-test
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache
