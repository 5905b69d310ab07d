# tradingapp: `make run` starts every process on this machine, `make test` lints and tests.
# Everything lives in .venv, installed from the hashed locks (requirements*.lock, made by `make lock`
# from requirements*.txt); installs are skipped while the locks are unchanged (stamps).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
PIP_INSTALL := $(BIN)/python -m pip install --disable-pip-version-check --quiet --require-hashes
# The locks are resolved for every platform the Dockerfiles may build on (x86_64 and arm64 Linux).
UV_COMPILE := $(BIN)/uv pip compile --quiet --generate-hashes --universal --python-version 3.11 $(LOCK_FLAGS)

# The terminal (frontend/): npm ci from the lockfile when it changed, vite build when a source changed.
NPM := npm --prefix frontend --no-audit --no-fund
NODE_STAMP := frontend/node_modules/.package-lock.json
TERMINAL := frontend/dist/index.html
TERMINAL_SOURCES := $(shell find frontend/src frontend/public frontend/scripts -type f 2>/dev/null) \
	$(wildcard frontend/index.html frontend/vite.config.ts frontend/tsconfig*.json frontend/package.json)

export FLASK_APP := wsgi
# `make run` trades on paper against the simulated feed unless the environment says otherwise.
export BROKER ?= paper

.DEFAULT_GOAL := help
.PHONY: help run run-xts test bench lint fmt migrate seed preflight services install install-dev lock clean xts-sim \
	terminal browsers prom-tools drill-tools certs screenshots chaos audit dr-drill failover-drill

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

run: $(RUNTIME_STAMP) ## start (or install) Redis and RabbitMQ if needed, build the terminal, migrate, run it all
	@$(BIN)/python -m tradingapp.preflight --start --terminal
	@$(MAKE) --no-print-directory terminal
	@$(BIN)/flask create-db
	@$(BIN)/flask db upgrade
	@$(BIN)/flask seed
	@$(BIN)/python scripts/run_stack.py

run-xts: $(RUNTIME_STAMP) ## the same stack with BROKER=xts against the XTS simulator, started first on XTS_SIM_PORT (9200)
	@$(BIN)/python -m tradingapp.preflight --start --terminal
	@$(MAKE) --no-print-directory terminal
	@$(BIN)/flask create-db
	@$(BIN)/flask db upgrade
	@$(BIN)/flask seed
	@$(BIN)/python scripts/run_stack.py --xts-sim --xts-sim-port $${XTS_SIM_PORT:-9200}

test: $(DEV_STAMP) services browsers prom-tools drill-tools ## services (PostgreSQL with TimescaleDB), browsers, Prometheus' and the drills' tools if needed, ruff, import rules, the terminal's tests and build, pytest
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	@$(BIN)/python -m tradingapp.preflight --terminal >/dev/null || $(BIN)/python -m tradingapp.preflight --terminal
	$(MAKE) --no-print-directory terminal
	$(NPM) test
	$(BIN)/pytest

terminal: $(TERMINAL) ## build the terminal into frontend/dist (npm ci, then vite build) when its sources changed

$(NODE_STAMP): frontend/package-lock.json
	$(NPM) ci
	@touch $@

$(TERMINAL): $(NODE_STAMP) $(TERMINAL_SOURCES)
	$(NPM) run build
	@touch $@

screenshots: $(DEV_STAMP) services browsers terminal ## docs/screenshots/*.png of the terminal, from the real stack
	$(BIN)/pytest -q -p no:cacheprovider tests/browser/screenshots.py

certs: ## a self-signed ssl/cert.pem + ssl/key.pem for the compose frontend (kept while valid)
	@scripts/make_certs.sh

browsers: ## Debian's chromium (browser tests) and nginx (the frontend proxy's test), installed with apt when missing
	@scripts/ensure_tools.sh chromium nginx

prom-tools: ## Debian's prometheus and alertmanager (promtool, amtool, the server the dashboards test runs), installed with apt when missing
	@scripts/ensure_tools.sh prometheus alertmanager

drill-tools: ## Debian's pgbackrest, patroni and etcd-server (the backup and failover drills), installed with apt when missing
	@scripts/ensure_tools.sh pgbackrest patroni etcd

dr-drill: $(DEV_STAMP) services drill-tools ## lose a PostgreSQL cluster under order load, restore it with pgBackRest (latest and PITR); prints RTO and RPO
	$(BIN)/python -m tests.drills.dr $(DRILL_FLAGS)

failover-drill: $(DEV_STAMP) services drill-tools ## kill the Patroni primary under order load; prints time to writes, lost and duplicated orders
	$(BIN)/python -m tests.drills.failover $(DRILL_FLAGS)

bench: $(DEV_STAMP) services browsers terminal ## run the benchmarks under bench/ (each prints its figures beside a raw baseline)
	$(BIN)/python -m bench.order_latency
	$(BIN)/python -m bench.order_throughput
	$(BIN)/python -m bench.xts_latency
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.candles
	$(BIN)/python -m bench.tick_storage
	$(BIN)/python -m bench.ws_fanout
	$(BIN)/python -m bench.terminal

chaos: $(DEV_STAMP) services ## every fault (kill -9, restarts, cuts, latency) under order load on throwaway services; table + JSON
	$(BIN)/python -m tests.chaos $(CHAOS_FLAGS)

audit: $(DEV_STAMP) ## the locks against the vendored advisory snapshot (advisories/; docs/dependencies.md)
	$(BIN)/python scripts/audit_deps.py

lint: $(DEV_STAMP) ## ruff check, ruff format --check and the import rules (.importlinter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

fmt: $(DEV_STAMP) ## ruff format and the safe ruff fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: $(RUNTIME_STAMP) ## create the database if missing and apply the migrations
	$(BIN)/flask create-db
	$(BIN)/flask db upgrade

xts-sim: $(RUNTIME_STAMP) ## run the XTS broker simulator on XTS_SIM_PORT (default 9200); control API under /_sim
	$(BIN)/python -m tradingapp.simulators.xts --host 127.0.0.1 --port $${XTS_SIM_PORT:-9200}

seed: $(RUNTIME_STAMP) ## demo users and instruments (idempotent)
	$(BIN)/flask seed

preflight: $(RUNTIME_STAMP) ## check that Redis, RabbitMQ and PostgreSQL (when DB_HOST is set) answer
	@$(BIN)/python -m tradingapp.preflight

services: ## make sure local PostgreSQL, Redis and RabbitMQ run (installs them when missing)
	@scripts/ensure_services.sh

install: $(RUNTIME_STAMP) ## the runtime requirements in .venv
install-dev: $(DEV_STAMP) ## runtime and development requirements in .venv

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
		{ echo "tradingapp needs Python 3.11+; '$(PYTHON)' is $$($(PYTHON) -V 2>&1 || echo missing)" >&2; exit 1; }
	@$(PYTHON) -m venv $(VENV) || \
		{ rm -rf $(VENV); echo "could not create $(VENV); on Debian/Ubuntu: sudo apt-get install -y python3-venv" >&2; exit 1; }

$(RUNTIME_STAMP): requirements.lock | $(BIN)/python
	$(PIP_INSTALL) -r requirements.lock
	@touch $@

# The dev lock holds the runtime lock's versions (compiled with it as a constraint) plus the tools.
$(DEV_STAMP): requirements.lock requirements-dev.lock | $(BIN)/python
	$(PIP_INSTALL) -r requirements-dev.lock
	@touch $@ $(RUNTIME_STAMP)

lock: $(DEV_STAMP) ## resolve requirements*.txt into the locks (LOCK_FLAGS="--upgrade-package X" moves X)
	$(UV_COMPILE) requirements.txt -o requirements.lock
	$(UV_COMPILE) requirements-dev.txt -c requirements.lock -o requirements-dev.lock
	@echo "lock: review 'git diff *.lock', then 'make install-dev' installs it"

clean: ## remove the venv, caches, the terminal's build and the local SQLite database
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis instance/*.db instance/*.db-wal instance/*.db-shm
	rm -rf frontend/node_modules frontend/dist
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
