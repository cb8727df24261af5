# Customer Journey Lab — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# the lock is installed with uv (about twice as fast as pip here: bench/README.md), pip if uv fails
UV_VERSION ?= 0.13.9
SAMPLE := data/sample/events.csv
SAMPLE_PERSONS ?= 3000
SEED   ?= 0
DATA   ?= $(SAMPLE)
SEGMENTS ?= reports/segments.yml
# reports run at once by `make reports` (bench/README.md: on 2 cores, 2 workers beat 1)
WORKERS ?= 2
MAPPING ?=
# notebook parameters, KEY=VALUE separated by spaces (`make reports PARAMS="inactivity_days=0.5 draws=1000"`;
# `python -m analysis report --list-params` lists them); a value with spaces goes in the segments file
PARAMS ?=
export PYTENSOR_FLAGS ?= base_compiledir=$(CURDIR)/.cache/pytensor
export MPLBACKEND ?= Agg
export PYDEVD_DISABLE_FILE_VALIDATION = 1

.PHONY: help venv system data test test-fast test-spark test-slow notebooks-test reports report-params lint bench lock clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 not found: install it, or run make PYTHON=/path/to/python3.11"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (found " + sys.version.split()[0] + "); run make PYTHON=/path/to/python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock \
	  || { echo "uv could not install the lock (see above); installing it with pip instead"; \
	       $(BIN)/python -m pip install --quiet -r requirements.lock; }
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e . \
	  || $(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP) ## Create .venv from the lock (only when missing or the lock changed)

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

system: ## Install system packages the tests need when missing: Java (Spark), Chromium (report test)
	@command -v java >/dev/null 2>&1 || { \
	  echo "Java not found: installing default-jre-headless (needed by engine='spark')"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq default-jre-headless >/dev/null; }
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "Chromium not found: installing Debian's chromium (the reports are checked in a headless browser)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

$(SAMPLE): $(STAMP) $(wildcard src/analysis/synth/*.py) src/analysis/__main__.py
	$(BIN)/python -m analysis synth --n-persons $(SAMPLE_PERSONS) --seed $(SEED) --sample-incident --out $(SAMPLE)

data: $(SAMPLE) ## Build the synthetic sample data (data/sample/)

# the notebook smoke run samples cheaply (every cell runs; the figures are not the point here) and
# leaves the Bayesian attribution to its smoke fit in tests/models (its notebook cells are tested
# functions, reports.fit_sections); notebook 07 tries at most two archetypes (patterns_k_max), thinning its sampler by 5;
# notebook 08 fits its Care models by MAP (care_method=map: PyMC's own NUTS without the C back end
# is too slow for a smoke run); `make test-slow` runs the reports with default parameters
SMOKE_PARAMS ?= draws=100 tune=100 chains=2 models=[heuristic,markov,shapley] train_origins=1 backtest_cutoffs=1 patterns_k_max=2 patterns_thin=5 care_method=map
# test processes (pytest-xdist): a file's tests stay together, Spark tests share one worker
TEST_WORKERS ?= 2
# tests run PyTensor without its C back end (cxx=): the samplers are JAX's (numpyro), and the few
# functions PyTensor compiles itself (initial points, deterministics) run as NumPy. On a fresh
# clone the C compilation cost more than the tests: notebook 02's smoke run took 159 s with it,
# 36 s without (same cells, same results)
TEST_ENV := PYTENSOR_FLAGS="$(PYTENSOR_FLAGS),cxx="

test: $(STAMP) system $(SAMPLE) ## Run the test suite and the notebook smoke tests (CI runs it, then test-spark)
	$(TEST_ENV) $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup tests -m "not slow and not spark"
	$(TEST_ENV) CJL_NOTEBOOK_PARAMS="$(SMOKE_PARAMS)" $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --nbval-lax -p no:randomly notebooks/ --ignore=notebooks/exploratory

test-fast: $(STAMP) $(SAMPLE) ## The tests without the notebooks and Spark
	$(TEST_ENV) $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup tests -m "not slow and not spark"

test-spark: $(STAMP) system $(SAMPLE) ## The Spark engine's parity tests (a local JVM; CI runs them after make test)
	$(TEST_ENV) $(BIN)/python -m pytest -q tests -m "spark and not slow"

test-slow: $(STAMP) system $(SAMPLE) ## Heavy studies marked slow (parameter recovery, scale)
	$(TEST_ENV) $(BIN)/python -m pytest -q tests -m slow

reports: $(STAMP) $(SAMPLE) ## Run the report notebooks for every segment into reports/<run-id>/ (DATA=, MAPPING=, SEGMENTS=, WORKERS=, PARAMS=)
	$(BIN)/python -m analysis report --data $(DATA) $(if $(MAPPING),--mapping $(MAPPING)) --segments $(SEGMENTS) --workers $(WORKERS) $(foreach p,$(PARAMS),--param '$(p)')

report-params: $(STAMP) ## List every notebook parameter with its default and meaning (SEGMENTS=)
	@$(BIN)/python -m analysis report --segments $(SEGMENTS) --list-params

lint: $(STAMP) ## ruff (rules and format), import layers (import-linter), types (mypy)
	$(BIN)/ruff check src tests bench notebooks
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(STAMP) system ## Benchmarks (bench/README.md); not tests
	$(BIN)/python bench/journeys.py
	$(BIN)/python bench/transitions.py
	$(BIN)/python bench/attribution.py
	$(BIN)/python bench/reports.py
	$(BIN)/python bench/friction.py

lock: ## Re-resolve requirements.lock from pyproject.toml in a scratch venv
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet ".[dev]"
	{ head -3 requirements.lock; .lock-venv/bin/pip freeze --exclude-editable | grep -v customer-journey-lab; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

clean: ## Remove the venv, sample data, report runs (and reports/latest) and caches
	rm -rf $(VENV) .cache data/sample/*.csv data/sample/*.parquet
	find reports -mindepth 1 -maxdepth 1 ! -name segments.yml ! -name README.md -exec rm -rf {} +
