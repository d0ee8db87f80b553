# genhub: two commands on a fresh machine with Python 3.11+, pip and make.
#   make run    creates .venv, installs genhub, runs it on the embedded defaults
#   make test   creates .venv, installs dev extras, runs ruff, mypy and pytest

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint typecheck pytest schema clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/genhub serve --host $(HOST) --port $(PORT)

# mypy runs beside pytest: the tests mostly wait on PostgreSQL, Redis and subprocesses.
test: $(VENV)/.installed-dev lint
	@$(MAKE) --no-print-directory -j2 typecheck pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest $(PYTEST_ARGS)

schema: $(VENV)/.installed
	$(BIN)/genhub export-schema
	$(BIN)/python -m graph.schema_docs

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
