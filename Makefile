# The two quick-start commands, and the chores around them. Every target installs what it needs
# into .venv first, so each works on a fresh checkout.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo dev test lint mutation bench bench-smoke package export install checkov node clean

demo: install  ## run the whole system on the emulator, publish demo events, show results
	$(BIN)/pubsub-kit demo

dev: install  ## run every function locally until Ctrl-C
	$(BIN)/pubsub-kit dev

test: install checkov node  ## the test suite, emulators included (started through emulator.sh)
	$(BIN)/python -m pytest

# mypy's own run (files in pyproject.toml) leaves out the function folders: each folder's main.py
# imports its sibling modules by their bare names, and every folder has a module named `main`. So
# each folder is checked on its own, as its own import root (the bench functions also import
# bench/functions/fn_counter.py and bench/topologies.py).
lint: install  ## ruff (lint and format) and mypy --strict over the whole tree; CI runs it first
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m mypy
	set -e; for d in functions/*/ tests/test_functions/*/; do \
		MYPYPATH=$$d $(BIN)/python -m mypy --explicit-package-bases $$d*.py; \
	done; \
	for d in bench/functions/*/; do \
		MYPYPATH=$$d:bench/functions:bench $(BIN)/python -m mypy --explicit-package-bases $$d*.py; \
	done

# mutmut 3 keeps earlier verdicts even when the tests changed, so every run starts afresh (~1 min).
mutation: install  ## mutation testing of the runtime core (not part of CI); docs/mutation.md
	rm -rf mutants
	$(BIN)/python -m mutmut run
	$(BIN)/python tests/mutation/score.py --fail-under 90

bench: install  ## throughput against the raw client library, as ratios (docs/performance.md)
	$(BIN)/python bench/run.py --private-emulator

# Every bench group once with a few dozen messages: CI runs it so that the bench cannot rot.
# Its numbers mean nothing; no test times anything.
bench-smoke: install
	$(BIN)/python bench/run.py --smoke --private-emulator

package: install  ## dist-functions/<function>.zip for Terraform
	$(BIN)/pubsub-kit package

export: install  ## regenerate infra/topology.json, docs/contracts, catalog-info.yaml, README's diagram
	$(BIN)/pubsub-kit topology export --terraform
	$(BIN)/pubsub-kit schema
	$(BIN)/pubsub-kit catalog --readme README.md

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "pubsub-kit needs Python 3.11+; run: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

# checkov, the Terraform scanner tests/test_checkov.py runs over infra/, gets a virtual environment
# of its own: it depends on bc-python-hcl2, which installs a module named `hcl2` over the
# python-hcl2 the infra tests use, and it pins an older packaging than ours (~15 s to install).
CHECKOV_VENV    := .venv-checkov
CHECKOV_VERSION := 3.3.30

checkov: $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)  ## the pinned checkov, in .venv-checkov

$(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION):
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "checkov==$(CHECKOV_VERSION)"
	touch $@

# The Node.js side of the tests: Backstage's catalog validators (tests/test_catalog.py) and the
# Pub/Sub client a Node producer uses (tests/test_node_producer.py). A Node project of its own,
# installed exactly as its package-lock.json pins it. No install scripts: none is needed, and one dependency
# of the AsyncAPI parser (@scarf/scarf) would only report the install over the network.
NODE_DIR := tests/node

node: $(NODE_DIR)/node_modules/.package-lock.json  ## tests/node's pinned packages (needs npm)

$(NODE_DIR)/node_modules/.package-lock.json: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --ignore-scripts

clean:
	./emulator.sh stop all
	rm -rf $(VENV) $(CHECKOV_VENV) $(NODE_DIR)/node_modules .pubsub-kit dist-functions .pytest_cache
