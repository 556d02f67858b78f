# One target per thing a person does: run, demo, test, bench. Every target builds .venv from the
# pinned requirements first, so a fresh machine needs only Python 3.11+, make and the MariaDB tools.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# sam build needs the Lambda runtime's Python on PATH; pyenv may hold it beside the default one.
SAM_PYENV := $(shell command -v pyenv >/dev/null 2>&1 && pyenv versions --bare 2>/dev/null | grep -E '^3\.(11|12|13)\.' | tr '\n' ':' | sed 's/:$$//')

.PHONY: help venv run demo test lint typecheck unit integration e2e fuzz validate openapi scan lock-scan \
        openapi-check bench build lock tools db-up chromium mydumper clean

help:
	@echo "make run    - the whole system locally (API :8080, console :8080/console/, AWS :5000)"
	@echo "make demo   - the whole lifecycle, step by step, against a throwaway database"
	@echo "make test   - everything CI runs: lint, types, unit, integration, e2e, fuzz, template"
	@echo "make bench  - the benchmarks of docs/benchmarks.md, side by side"

$(STAMP): requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

venv: $(STAMP)

# The scanners live apart: checkov's pins would fight aws-sam-cli's (requirements-scan.in).
SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed
$(SCAN_STAMP): requirements-scan.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install -q --upgrade pip
	$(SCAN_VENV)/bin/pip install -q -r requirements-scan.txt
	touch $@

# The tools the project needs from the machine, not from PyPI.
tools:
	@missing=""; for t in mariadb mariadb-dump mariadb-admin zstd gzip; do \
	  command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	  if [ -n "$$missing" ]; then echo "missing:$$missing (apt-get install mariadb-client zstd)"; exit 1; fi

# The MariaDB server the integration tests and the local stack talk to (127.0.0.1:3306).
db-up: tools
	@mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1 || { \
	  echo "starting MariaDB"; start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd; \
	  for i in $$(seq 1 30); do mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1 && break; sleep 1; done; }
	@mariadb-admin -h 127.0.0.1 -u root ping

# The browser the console's e2e tests drive (Debian's chromium: no browser download at run time).
chromium:
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) \
	  apt-get install -y -qq chromium >/dev/null; }
	@command -v chromium

# mydumper and myloader, the restore bench's other contender (Debian's package, as for chromium).
mydumper:
	@{ command -v mydumper && command -v myloader; } >/dev/null 2>&1 || { echo "installing mydumper"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) \
	  apt-get install -y -qq mydumper >/dev/null; }
	@command -v myloader

run: $(STAMP) db-up
	$(BIN)/python -m devstack

demo: $(STAMP) db-up
	$(BIN)/python -m devstack.demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q --durations=10 tests/unit

integration: $(STAMP) db-up
	$(BIN)/pytest -q --durations=10 tests/integration

e2e: $(STAMP) db-up chromium
	$(BIN)/pytest -q --durations=10 tests/e2e

validate: $(STAMP)
	$(BIN)/sam validate --lint --template template.yaml --region us-east-1

openapi: $(STAMP)
	$(BIN)/python -m platform_backup.api.openapi > docs/openapi.json

openapi-check: $(STAMP)
	@$(BIN)/python -m platform_backup.api.openapi | diff -u docs/openapi.json - \
	  || { echo "docs/openapi.json is stale: run 'make openapi' and commit it"; exit 1; }

# Every finding is fixed, or suppressed in place with its reason: checkov's in the resource's
# Metadata (template.yaml), bandit's as "# nosec Bnnn: why" on the line.
scan: $(SCAN_STAMP)
	BC_SKIP_MAPPING=TRUE $(SCAN_VENV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet \
	  --skip-download
	$(SCAN_VENV)/bin/bandit --quiet --recursive --severity-level low --confidence-level low \
	  shared functions platform_backup_cli

test: lint typecheck openapi-check validate scan unit integration e2e

bench: $(STAMP) db-up mydumper
	$(BIN)/python -m bench

build: $(STAMP)
	PYENV_VERSION=$(SAM_PYENV) PATH=$(abspath $(BIN)):$$PATH $(BIN)/sam build --template template.yaml

lock:
	$(PYTHON) -m venv /tmp/pdb-lock && /tmp/pdb-lock/bin/pip install -q -r requirements-dev.in \
	  && /tmp/pdb-lock/bin/pip freeze > requirements-dev.txt && rm -rf /tmp/pdb-lock

lock-scan:
	$(PYTHON) -m venv /tmp/pdb-lock-scan && /tmp/pdb-lock-scan/bin/pip install -q -r requirements-scan.in \
	  && { echo "# Pinned from requirements-scan.in with \`make lock-scan\`; installed by \`make scan\` into .venv-scan."; \
	       /tmp/pdb-lock-scan/bin/pip freeze; } > requirements-scan.txt && rm -rf /tmp/pdb-lock-scan

clean:
	rm -rf $(VENV) $(SCAN_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
