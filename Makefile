# `make dev` runs the backend with its chat page; `make test` runs every test.
# Both create the virtual environment on first use; nothing but Python 3.11+ and make needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: dev test test-fast bench lint clean install test-deps

install: $(STAMP)

$(STAMP): pyproject.toml layers/chat/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

dev: $(STAMP)
	$(BIN)/python -m chat_dev.devserver

test: $(STAMP) test-deps
	$(BIN)/python -m pytest

# The suites a developer runs while working: no browser, no npm, nothing marked slow.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not browser and not node"

test-deps: $(STAMP)
	@bash tests/install_test_deps.sh

bench: $(STAMP) test-deps
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check layers functions bench tests dev
	$(BIN)/ruff format --check layers functions bench tests dev

clean:
	rm -rf $(VENV) .pytest_cache bench/results tests/js/node_modules
