# Self-documenting Makefile: `make help` lists every target with the text after `##`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_SYSTEM ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RESEARCH := $(VENV)/bin/research
STUDY ?= studies/demo/study.yaml
KERNEL := research-study
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
INSTALLED := $(VENV)/.installed

.PHONY: help install lock data validate reports reports-lt test test-fast test-browser lab bench bench-r lint clean clean-reports

help: ## List the targets with a one-line description
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(INSTALLED): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (research study)" >/dev/null
	@touch $@

install: $(INSTALLED) ## Create .venv from the system python3 if missing, install the pinned package and its Jupyter kernel

lock: ## Regenerate requirements.lock from pyproject.toml in a throw-away environment
	rm -rf .lock-venv && $(PYTHON_SYSTEM) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip && .lock-venv/bin/pip install --quiet ".[dev]"
	.lock-venv/bin/pip freeze --exclude research --exclude pip > requirements.lock.tmp && mv requirements.lock.tmp requirements.lock
	rm -rf .lock-venv

data: $(INSTALLED) ## Regenerate the synthetic demo data in data/raw/demo (byte-identical for the same seed)
	$(RESEARCH) synth --study $(STUDY)

validate: $(INSTALLED) ## Check the study config, codebook and raw data without running analyses
	$(RESEARCH) validate --study $(STUDY)

reports: $(INSTALLED) ## Run the whole study (incremental) and render the HTML reports under reports/
	$(RESEARCH) run --study $(STUDY) -j $(JOBS)

reports-lt: $(INSTALLED) ## Render the demo study's reports in Lithuanian (reports/demo-lt)
	$(RESEARCH) run --study $(STUDY) -j $(JOBS) -p language=lt

# --dist loadfile keeps a test file on one worker, so a module's expensive fixture (a whole study run) is
# built once; xdist's loadgroup does not group tests under pytest 9.
test: $(INSTALLED) ## Run the test suite (browser tests skip where Chromium is absent)
	$(PY) -m pytest -n 2 --dist loadfile -q

test-fast: $(INSTALLED) ## Run the unit tests only, without notebook end-to-end runs
	$(PY) -m pytest -q -m "not slow and not browser"

test-browser: reports ## Install headless Chromium where missing; check the demo reports and fixtures in it
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	$(PY) -m pytest -q -m browser

lab: $(INSTALLED) ## Open JupyterLab in the project environment
	$(VENV)/bin/jupyter lab notebooks/

bench: $(INSTALLED) ## Run the benchmarks, write bench/results/*.json and docs/benchmarks.md
	$(PY) -m bench.run

bench-r: ## Install R with psych and GPArotation (Debian packages) for the side-by-side benchmarks
	@command -v Rscript >/dev/null || (apt-get update -qq && apt-get install -y -qq r-base-core r-cran-psych r-cran-gparotation >/dev/null)
	$(MAKE) bench

lint: $(INSTALLED) ## Lint the package and tests with ruff
	$(VENV)/bin/ruff check src tests bench

clean-reports: ## Remove derived data and reports (raw data is never touched)
	rm -rf data/processed/* reports/*
	touch data/processed/.gitkeep reports/.gitkeep

clean: clean-reports ## Remove derived outputs and the virtual environment
	rm -rf $(VENV) .pytest_cache .ruff_cache
