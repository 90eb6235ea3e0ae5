# exsync: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
DEMO_MAILBOXES ?= 2000
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/exsync_bench
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/3
export DJANGO_SETTINGS_MODULE := exsync.settings

.PHONY: setup run test lint format bench-% clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet ".[dev]"
	touch $@

## setup: create .venv and install exsync's dependencies
setup: $(BIN)/.installed

## run: the product on the embedded default (SQLite, filesystem broker, database outbox),
##      with the sample organisation, a web server, a Celery worker and beat.
run: setup
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py migrate --no-input
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py seed_demo --mailboxes $(DEMO_MAILBOXES)
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py seed_demo_batches
	DEBUG=$${DEBUG:-true} $(BIN)/python manage.py demo_users
	@echo "exsync: open http://127.0.0.1:$(PORT)/ and log in as admin or helpdesk (password above)"
	DEBUG=$${DEBUG:-true} PORT=$(PORT) PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile.dev

## test: the whole suite (PostgreSQL/Redis/browser tests skip without them unless CI=true)
test: setup
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench-NAME: run benchmarks/NAME.py against PostgreSQL (and Redis); last line is the result
bench-%: setup
	DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL) SECRET_KEY=bench \
		$(BIN)/python benchmarks/$*.py

clean:
	rm -rf $(VENV) var
