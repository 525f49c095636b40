# Two commands from a fresh clone (Python 3.11+ and make; nothing to activate):
#
#   make dev                 the dev server on http://127.0.0.1:3000   (make dev ARGS=--once: one shot)
#   make test                the whole suite      (make test ARGS="-k health -x"; DATABASE_URL is honoured)
#   make lint                ruff check, ruff format --check, mypy --strict lib api sandbox
#
# Each target first makes sure $(VENV) exists and holds requirements-dev.txt.
# The install runs again only when a requirements file is newer than the stamp
# file, so every other run starts at once. VENV=.ci/venv is how CI uses its own.

PYTHON ?= python3
VENV ?= .venv
ARGS ?=
STAMP := $(VENV)/.requirements-installed
BIN := $(VENV)/bin
REQUIREMENTS := requirements.txt requirements-dev.txt
# The API reference page (Redoc) for the dev server only: never deployed.
WEB := scripts/devserver/web
WEB_STAMP := $(WEB)/node_modules/.package-lock-installed

BROWSER := tests/browser
BROWSER_STAMP := $(BROWSER)/node_modules/.package-lock-installed

.PHONY: dev test lint venv web browser-deps clean-venv

venv: $(STAMP)

$(STAMP): $(REQUIREMENTS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed: $(PYTHON) is " + sys.version.split()[0] + ". Run make PYTHON=python3.12 (or any 3.11+).")'
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON) -m venv"; $(PYTHON) -m venv $(VENV); }
	@echo "installing requirements-dev.txt into $(VENV)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# Redoc for /docs: installed from the committed package-lock.json. Without npm
# the dev server still runs; /docs then says how to get the page.
web: $(WEB_STAMP)

$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		echo "installing the API reference page (npm ci in $(WEB))"; \
		(cd $(WEB) && npm ci --silent --no-audit --no-fund) && touch $@; \
	else \
		echo "npm not found: /docs will not render (the API description is still at /openapi.json)"; \
	fi

# axe-core for the admin page's browser tests, from tests/browser/package-lock.json.
browser-deps: $(BROWSER_STAMP)

$(BROWSER_STAMP): $(BROWSER)/package.json $(BROWSER)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		echo "installing the browser tests' npm packages (npm ci in $(BROWSER))"; \
		(cd $(BROWSER) && npm ci --silent --no-audit --no-fund) && touch $@; \
	else \
		echo "npm not found: the browser tests' accessibility checks will fail"; \
	fi

dev: $(STAMP) web
	$(BIN)/python scripts/dev.py $(ARGS)

test: $(STAMP) browser-deps
	$(BIN)/python -m pytest $(ARGS)

# mypy.ini says how api/ files (loaded by path, from folders that are not packages) are checked.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict lib api sandbox

clean-venv:
	rm -rf $(VENV)
