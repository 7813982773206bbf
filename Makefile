# karr_db make targets. `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Two stamps: the runtime alone (`make run`) and the runtime with the dev extra
# (tests, linters, docs). Installing the dev extra satisfies both.
INSTALLED := $(VENV)/.installed
RUNTIME := $(VENV)/.installed-runtime

.PHONY: help install install-runtime run test soak lint format docs check-schema sql clean bench bench-quick bench-scale bench-million

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED) $(RUNTIME)

$(RUNTIME): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e .
	touch $(RUNTIME)

install: $(INSTALLED) ## create the virtualenv and install karr_db with its test, lint and docs tools

install-runtime: $(RUNTIME) ## create the virtualenv and install karr_db alone

run: install-runtime ## install karr_db alone, migrate the configured database (karr-db config) and show its status
	$(VENV)/bin/karr-db upgrade
	$(VENV)/bin/karr-db status

test: install ## run the whole test suite (PostgreSQL from KARR_TEST_POSTGRES_URL)
	$(PY) -m pytest $(PYTEST_ARGS)

SOAK_SECONDS ?= 300
SOAK_REPORT ?= soak-report.jsonl

soak: install ## the reliability tests for about SOAK_SECONDS (default 300); figures in SOAK_REPORT
	rm -f $(SOAK_REPORT)
	KARR_SOAK_SECONDS=$(SOAK_SECONDS) KARR_RELIABILITY_REPORT=$(abspath $(SOAK_REPORT)) \
		timeout $$(( $(SOAK_SECONDS) * 3 + 600 )) $(PY) -m pytest -m reliability tests/reliability $(PYTEST_ARGS)

lint: install ## ruff, mypy, the import-layer contract and actionlint on the workflows
	$(VENV)/bin/ruff check karr_db tests bench
	$(VENV)/bin/ruff format --check karr_db tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/actionlint .github/workflows/*.yml

docs: install ## build the documentation site into site/ (MkDocs, strict: warnings and broken links fail)
	$(VENV)/bin/mkdocs build --strict --quiet

format: install ## rewrite the code in ruff's format and apply its safe fixes
	$(VENV)/bin/ruff format karr_db tests bench
	$(VENV)/bin/ruff check --fix karr_db tests bench

# Benchmarks against raw sqlite3/psycopg baselines (docs/performance.md).
# PostgreSQL: KARR_BENCH_POSTGRES_URL or KARR_TEST_POSTGRES_URL (a server URL;
# throwaway karr_bench_* databases are created and dropped), else SQLite only.
bench: install ## full benchmark on both dialects, with scaling at 1k and 10k runs
	$(PY) -m bench --scale 1000,10000 $(BENCH_ARGS)

bench-quick: install ## the same workloads at small sizes (about a minute)
	$(PY) -m bench --quick $(BENCH_ARGS)

bench-scale: install ## save, latest, leaderboards, history and bytes per run at 1k, 10k and 100k runs (long)
	$(PY) -m bench --only scaling --scale 1000,10000,100000 $(BENCH_ARGS)

bench-million: install ## a PostgreSQL database of 1,000,000 runs made in bulk; times the common reads and writes, and its size
	$(PY) -m bench.million $(BENCH_ARGS)

check-schema: install ## report drift between the models and the database
	$(VENV)/bin/karr-db check

sql: install ## print the PostgreSQL DDL of a full upgrade (from an empty database)
	$(VENV)/bin/karr-db upgrade --sql --from-empty --database postgresql+psycopg://localhost/karr

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist site
