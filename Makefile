# Two commands: `make demo` runs the product, `make test` runs every check. Both install what they need.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
ASSETS := node_modules/.installed

.PHONY: demo test lint typecheck unit system-deps clean bench

demo: $(RUNTIME) $(ASSETS)
	$(BIN)/unigate demo

test: $(DEV) $(ASSETS) system-deps lint typecheck unit

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(DEV)
	$(BIN)/mypy

unit: $(DEV) $(ASSETS) system-deps
	$(BIN)/pytest -q -p no:cacheprovider

# Benchmarks print figures with a ratio against a baseline measured in the same run; not part of `make test`.
bench: $(DEV) $(ASSETS) system-deps
	$(BIN)/python bench/stockouts.py
	$(BIN)/python bench/gateway_chain.py
	$(BIN)/python bench/http_client.py
	$(BIN)/python bench/rate_limits.py
	$(BIN)/python bench/mapping.py
	$(BIN)/python bench/schemes.py

$(VENV)/bin/pip:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(RUNTIME): pyproject.toml constraints.txt | $(VENV)/bin/pip
	$(BIN)/pip install -q -c constraints.txt -e .
	touch $@

$(DEV): pyproject.toml constraints.txt | $(VENV)/bin/pip
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $(RUNTIME) $@

$(ASSETS): package.json package-lock.json
	@command -v npm >/dev/null || $(MAKE) --no-print-directory apt-install PKGS="nodejs npm"
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian packages the tests use for real: Redis, PostgreSQL, Chromium and a CJK font (portal pages),
# nginx and wrk (benchmarks).
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then $(MAKE) --no-print-directory apt-install PKGS="$$missing"; fi

apt-install:
	@echo "installing Debian packages:$(PKGS)"
	@if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(PKGS) >/dev/null

clean:
	rm -rf $(VENV) node_modules var .pytest_cache .mypy_cache .ruff_cache
