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
# The suite's processes: most tests wait on servers they start, so three share two cores
# well. A file's tests stay in one process (its module fixtures start servers once).
TEST_PROCESSES ?= 3
XDIST = -n $(TEST_PROCESSES) --dist loadfile

.PHONY: install browser run test test-postgres test-embedded test-clock lint bench docs docs-check screenshots clean

$(VENV)/.installed: requirements.txt requirements-dev.txt sdk/pyproject.toml $(wildcard sdk/missioncontrol_sdk/*.py)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check ./sdk
	touch $@

# npm's MCP test server (server-everything), pinned in package.json.
node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# Front-end libraries of the pages (htmx, uPlot, cytoscape, GraphiQL; pinned in package.json),
# copied into static/vendor/ (ignored by git): nothing loads from a CDN at run time.
VENDOR := static/vendor
$(VENDOR)/.installed: node_modules/.installed
	mkdir -p $(VENDOR)/graphiql
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/uplot/dist/uPlot.iife.min.js \
	   node_modules/uplot/dist/uPlot.min.css node_modules/cytoscape/dist/cytoscape.min.js $(VENDOR)/
	cp node_modules/react/umd/react.production.min.js node_modules/react-dom/umd/react-dom.production.min.js \
	   node_modules/graphiql/graphiql.min.js node_modules/graphiql/graphiql.min.css $(VENDOR)/graphiql/
	cp node_modules/@graphiql/plugin-explorer/dist/index.umd.js $(VENDOR)/graphiql/plugin-explorer.umd.js
	cp node_modules/@graphiql/plugin-explorer/dist/style.css $(VENDOR)/graphiql/plugin-explorer.css
	touch $@

# Debian's Chromium for the browser tests (Playwright drives it and never downloads one).
/usr/bin/chromium:
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium || \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

browser: /usr/bin/chromium

install: $(VENV)/.installed node_modules/.installed $(VENDOR)/.installed

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --if-empty
	$(PY) manage.py serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT))

# The lint first (seconds), then everything against PostgreSQL + Redis, then the suite
# again on the embedded default (SQLite, in-memory channel layer) minus the multi-process
# tests that need Redis, then the date-sensitive tests with the clock moved a year ahead
# and a year back.
test: install
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory docs-check
	$(MAKE) --no-print-directory test-postgres
	$(MAKE) --no-print-directory test-embedded
	$(MAKE) --no-print-directory test-clock

test-postgres: install browser
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) SECRET_KEY=test-only \
	MC_CONN_MAX_AGE=0 MC_CHANNEL_PREFIX=mctest$$$$ \
	$(PY) -m pytest $(XDIST) --create-db -q

test-embedded: install browser
	tmp=$$(mktemp -d) && env -u DATABASE_URL -u REDIS_URL -u MC_CONFIG MC_DATA_DIR=$$tmp \
	$(PY) -m pytest $(XDIST) -q -m "not slow"; rc=$$?; rm -rf $$tmp; exit $$rc

# The tests marked `clock` (tests/conftest.py: DATED_MODULES) on the embedded default,
# with every Python process of the run (pytest and the servers it starts) a year ahead,
# then a year back: tests/clock/sitecustomize.py moves the wall clock with time-machine.
test-clock: install browser
	for days in 365 -365; do echo "test-clock: the clock moved $$days days"; \
	  tmp=$$(mktemp -d) && env -u DATABASE_URL -u REDIS_URL -u MC_CONFIG MC_DATA_DIR=$$tmp \
	  PYTHONPATH=tests/clock MC_TEST_CLOCK_SHIFT_DAYS=$$days $(PY) -m pytest $(XDIST) -q -m clock; \
	  rc=$$?; rm -rf $$tmp; [ $$rc -eq 0 ] || exit $$rc; \
	done

# The documentation site (mkdocs.yml, docs/): the reference pages regenerated from the
# code, then a strict build into site/ (a broken link or a page outside the nav fails).
docs: install
	$(PY) docs/gen_reference.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# What make test checks: the committed reference pages match the code, the site builds strictly.
docs-check: install
	$(PY) docs/gen_reference.py --check
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir $$(mktemp -d)

# docs/img/*.png taken from the running demo with Chromium (make browser).
screenshots: install browser
	$(PY) scripts/screenshots.py

# ruff, then import-linter: the import rules of the layout (pyproject.toml's [tool.importlinter]).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

bench: install
	$(PY) bench/run.py
	$(PY) bench/query.py
	$(PY) bench/gateway.py
	$(PY) bench/otlp.py
	$(PY) bench/spool.py
	$(PY) bench/sustain.py
	$(PY) bench/redaction.py
	$(PY) bench/policy.py

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache node_modules site
