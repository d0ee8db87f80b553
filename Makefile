# genhub: two commands on a fresh machine with Python 3.11+, pip and make.
#   make run    creates .venv, installs genhub, runs it on the embedded defaults
#   make test   creates .venv, installs dev extras, runs ruff, mypy and pytest
# Every install takes its versions from requirements.lock (pip constraints), so a fresh
# clone gets the versions CI tested; `make lock` rewrites it after pyproject.toml changes.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test test-fast lint typecheck pytest schema lock sdk sdk-lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet -c requirements.lock -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet -c requirements.lock -e ".[dev]"
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/genhub serve --host $(HOST) --port $(PORT)

# mypy runs beside pytest: the tests mostly wait on PostgreSQL, Redis and subprocesses.
test: $(VENV)/.installed-dev lint
	@$(MAKE) --no-print-directory -j2 typecheck pytest

# The generated Python client is excluded from ruff (pyproject.toml); its one hand-written module,
# named here, is not (ruff checks a path it is given even inside an excluded directory).
SDK_HAND_WRITTEN := sdk/python/genhub_client/trusted_documents.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check . $(SDK_HAND_WRITTEN)
	$(BIN)/ruff format --check . $(SDK_HAND_WRITTEN)

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# pytest in PYTEST_WORKERS processes (pytest-xdist), more than the cores: the suite mostly waits on
# PostgreSQL, Redis and subprocesses (docs/benchmarks.md). Each process has its own database and
# Redis DB (tests/fixtures/services.py); each test file runs whole in one process (its module fixtures).
PYTEST_WORKERS ?= 4

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The unit tests only (no PostgreSQL, Redis or subprocesses): seconds, for the edit-test loop.
test-fast: $(VENV)/.installed-dev
	$(BIN)/pytest tests/unit -q

# Everything derived from the schema: schema.graphql, docs/schema.md and the SDKs of sdk/.
schema: $(VENV)/.installed-dev
	$(BIN)/genhub export-schema
	$(BIN)/python -m graph.schema_docs
	$(BIN)/python scripts/sdk_codegen.py

# Re-resolve every dependency (all extras, every Python from 3.11 on) into requirements.lock;
# tests/unit/test_lock.py fails until this is run after a dependency change.
lock: $(VENV)/.installed-dev
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra otel --universal --python-version 3.11 \
		--custom-compile-command "make lock" --quiet -o requirements.lock
	$(BIN)/python scripts/lock_digest.py --write

# The SDKs of sdk/ (TypeScript types and possibleTypes by graphql-codegen, the trusted-documents manifest
# of their operations by Apollo's generator, the Python client by
# ariadne-codegen) regenerated from schema.graphql and sdk/operations (`make schema` runs it too).
# tests/integration/test_sdk.py fails while the committed files are stale.
sdk: $(VENV)/.installed-dev
	$(BIN)/python scripts/sdk_codegen.py

# Re-resolve ariadne-codegen's own venv (.venv-codegen, made on demand by `make sdk`).
sdk-lock: $(VENV)/.installed-dev
	$(BIN)/uv pip compile sdk/python/requirements-codegen.in --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command "make sdk-lock" --quiet -o sdk/python/requirements-codegen.lock

clean:
	rm -rf $(VENV) .venv-codegen .mypy_cache .ruff_cache .pytest_cache
