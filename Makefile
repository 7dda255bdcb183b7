# `make dev` runs the backend with its chat page; `make test` runs every test; `make help`
# lists the rest. Each creates the virtual environment on first use; nothing but
# Python 3.11+ and make is needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help dev test test-fast bench lint clean install test-deps web

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP) ## Create .venv with the project and its dev tools

$(STAMP): pyproject.toml layers/chat/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed")'
	@echo "==> First run: creating the virtual environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> Upgrading pip"
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "==> Installing the project and its dev tools (a minute or two, once; pip shows its progress)"
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	@touch $(STAMP)
	@echo "==> Installed; from now on make starts at once"

dev: $(STAMP) ## Run the server and chat page locally (RELOAD=1: restart on *.py changes)
	$(BIN)/python -m chat_dev.devserver $(if $(filter 1 true yes,$(RELOAD)),--reload)

test: $(STAMP) test-deps ## Every test (browser and AI SDK suites included)
	$(BIN)/python -m pytest

test-fast: $(STAMP) ## The quick suites: nothing slow, no browser, no npm
	$(BIN)/python -m pytest -m "not slow and not browser and not node"

test-deps: $(STAMP) ## Install what the browser and AI SDK tests need
	@bash tests/install_test_deps.sh

web: ## Rebuild the chat page (web/src → web/dist/app.js, committed); needs npm
	cd web && npm ci --no-audit --no-fund --loglevel=error && node build.mjs

bench: $(STAMP) test-deps ## Benchmarks: prints a table, writes JSON in bench/results
	$(BIN)/python -m bench

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check layers functions bench tests dev
	$(BIN)/ruff format --check layers functions bench tests dev
	$(BIN)/mypy

clean: ## Remove .venv, caches, bench results and node_modules
	rm -rf $(VENV) .pytest_cache bench/results tests/js/node_modules web/node_modules
