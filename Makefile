# The two commands of the README:
#   make run    the local stack (moto_server, redis-server, tables, demo agents, chalice local, worker)
#   make test   lint + the whole test suite with the coverage gate (this is what .ci/run calls)
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced

.PHONY: setup run test lint browser unit requirements package bench clean

$(STAMP): pyproject.toml uv.lock
	@test -x .tools/bin/uv || { $(PYTHON) -m venv .tools && .tools/bin/pip install -q "uv==$(UV_VERSION)"; }
	.tools/bin/uv sync --frozen --quiet
	@touch $@

setup: $(STAMP)

run: setup
	$(BIN)/python -m infra.local

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint browser
	$(BIN)/python -m pytest -p no:cacheprovider -n auto --cov --cov-report=term --cov-fail-under=85 $(ARGS)

# Debian's chromium, for the test that drives the webchat page in a real headless browser.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium (for the browser test)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi \
	  || echo "WARNING: could not install chromium; the browser test will be skipped"; }

unit: setup
	$(BIN)/python -m pytest -q -m "not integration and not browser" $(ARGS)

# The Lambda package's requirements, generated from the lock (never edited by hand).
requirements: setup
	.tools/bin/uv export --frozen --no-dev --no-hashes --no-emit-project --no-header -o requirements.txt --quiet

package: requirements
	$(BIN)/python -m infra.package --stage prod dist/

bench: setup
	for script in bench/*.py; do $(BIN)/python $$script; done

clean:
	rm -rf $(VENV) .tools .coverage* dist
