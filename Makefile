# Mission Control: `make run` serves the embedded default, `make test` passes the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Optional overrides of server.host / server.port (default 127.0.0.1:8000).
HOST ?=
PORT ?=
# The test suite runs against the machine's PostgreSQL and Redis (trust auth on loopback).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/missioncontrol
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: install run test test-postgres test-embedded lint bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# npm's MCP test server (server-everything), pinned in package.json.
node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

# Everything against PostgreSQL + Redis, then the suite again on the embedded default
# (SQLite, in-memory channel layer) minus the multi-process tests that need Redis.
test: install
	$(MAKE) --no-print-directory test-postgres
	$(MAKE) --no-print-directory test-embedded

test-postgres: install
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) SECRET_KEY=test-only \
	MC_CONN_MAX_AGE=0 MC_CHANNEL_PREFIX=mctest$$$$ \
	$(PY) -m pytest --create-db -q

test-embedded: install
	tmp=$$(mktemp -d) && env -u DATABASE_URL -u REDIS_URL -u MC_CONFIG MC_DATA_DIR=$$tmp \
	$(PY) -m pytest -q -m "not slow"; rc=$$?; rm -rf $$tmp; exit $$rc

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) bench/run.py
	$(PY) bench/query.py
	$(PY) bench/gateway.py
	$(PY) bench/policy.py

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache node_modules
