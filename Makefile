# Tollgate: `make run` for the demo, `make test` for the suite. Both install into .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
PYTEST_ARGS ?=
# `make run PORT=8300 ODOO_PORT=8369`: the web server and the Odoo sandbox; e-mail links follow.
PORT ?= 8000
ODOO_PORT ?= 8069
# The suite runs in parallel processes, one test database each; tests that start real
# processes on the shared broker stay in one group so that only one of them runs at a time.
TEST_WORKERS ?= 2
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/tollgate_bench
SOAK_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/tollgate_soak

.PHONY: run test lint install install-dev bench soak clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Tollgate needs Python 3.11; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

$(STAMP_RUN): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	@touch $@

$(STAMP_DEV): $(STAMP_RUN) pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $@

install: $(STAMP_RUN)
install-dev: $(STAMP_DEV)

run: $(STAMP_RUN)
	$(BIN)/python -m portal.devstack --port $(PORT) --odoo-port $(ODOO_PORT)

test: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Every target row says MET or MISSED; `make bench BENCH_STRICT=1` exits non-zero on a miss.
bench: $(STAMP_DEV)
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python -m pytest tests/benchmarks -s -p no:cacheprovider $(PYTEST_ARGS)

# The concurrency and fault tests in their long form (under 20 minutes; needs PostgreSQL).
soak: $(STAMP_DEV)
	DATABASE_URL=$(SOAK_DATABASE_URL) TOLLGATE_SOAK=1 $(BIN)/python -m pytest tests/hardening -m soak -s -p no:cacheprovider $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
