# Two entry points, both self-installing on a machine with Python 3.11+ and make:
#   make run    set up .venv and start the app on its embedded defaults
#   make test   set up .venv and run lint, type checks and the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "dubstudio needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

.PHONY: run test lint browser
run: $(STAMP)
	$(BIN)/dubstudio serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# The browser tests drive Debian's Chromium (a test tool's own browser download cannot work offline).
browser:
	test -x /usr/bin/chromium && test -x /usr/bin/chromedriver || { apt-get update && apt-get install -y chromium chromium-driver; }

test: lint browser
	$(BIN)/python -m pytest
