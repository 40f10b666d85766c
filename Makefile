# MADE replication. `make test` and `make replicate` install what they need into .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# The paper's data sets: $MADE_DATA_DIR if set, else ../shared/data when present, else ./data (download).
MADE_DATA_DIR ?= $(firstword $(wildcard $(abspath ../shared/data)) $(abspath data))
export MADE_DATA_DIR

.PHONY: help install test lint format clean-venv replicate replicate-plain experiments compare progress lab bench mutants
.DEFAULT_GOAL := help

help: ## list the targets (plain `make` starts nothing long)
	@echo "MADE replication. Usage: make TARGET [PROFILE=cpu|paper|smoke] [RESULTS=folder] [-j N]"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-17s %s\n", $$1, $$2}'

# ---- replication: `make replicate [PROFILE=cpu] [-j N]`; finished experiments are skipped, interrupted ones resume
PROFILE ?= cpu
RESULTS ?= results
RUNS ?= runs
ONLY ?=
AGAINST ?= results
PARALLEL ?= 4
ENGINE ?= local
RAY_THREADS ?= 1
# -j N: each parallel experiment gets an equal share of the cores. Expanded in the recipe (`=`, not `:=`):
# GNU make adds -jN to MAKEFLAGS only after parsing, so a `:=` here would always see one job.
JOBS = $(or $(patsubst -j%,%,$(filter -j%,$(MAKEFLAGS))),1)
THREADS = $(shell n=$$(( $$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) / $(JOBS) )); [ $$n -ge 1 ] && echo $$n || echo 1)
REPLICATE := $(PY) -m replication.replicate --profile $(PROFILE) --results $(RESULTS) --runs $(RUNS)

replicate: install ## rerun the profile's experiments into RESULTS (skips finished ones, resumes interrupted ones; a long run only when ONLY names it); ENGINE=ray for Ray
	@case "$(ENGINE)" in local|ray) ;; *) echo "error: ENGINE=$(ENGINE) is not an engine; use ENGINE=local (the default) or ENGINE=ray" >&2; exit 2;; esac
	@if [ "$(words $(RESULTS))" != 1 ] || [ "$(words $(RUNS))" != 1 ]; then \
		echo "error: RESULTS='$(RESULTS)' and RUNS='$(RUNS)' must be folder paths without spaces" >&2; exit 2; fi
	@$(REPLICATE) check --only "$(ONLY)"
	@mkdir -p $(RUNS)
ifeq ($(ENGINE),ray)
	@$(PY) -m replication.ray_engine --profile $(PROFILE) --results $(RESULTS) --runs $(RUNS) --only "$(ONLY)" --threads $(RAY_THREADS)
else
	@$(MAKE) --no-print-directory experiments
endif
	@$(REPLICATE) curve
	@$(REPLICATE) summary

# Listed only when needed (prerequisites are expanded while the Makefile is read, by every `make`).
EXPERIMENTS = $(if $(filter experiments,$(MAKECMDGOALS)),$(shell $(REPLICATE) pending --only "$(ONLY)"))
experiments: $(addprefix experiment/,$(EXPERIMENTS))
experiment/%: FORCE
	@OMP_NUM_THREADS=$(THREADS) $(REPLICATE) run $*
FORCE:

replicate-plain: install ## the profile without papermill, PARALLEL experiments at once (GPU machines); ARCHIVE=x.tar.gz packs the results
	$(PY) -m replication.plain_engine --profile $(PROFILE) --results $(RESULTS) --runs $(RUNS) --only "$(ONLY)" \
		--parallel $(PARALLEL) $(if $(ARCHIVE),--archive $(ARCHIVE))

progress: install ## where the profile's unfinished runs stand: epoch, best validation NLL, look-ahead left, hours so far
	@$(REPLICATE) progress --only "$(ONLY)"

compare: install ## compare a rerun (RESULTS=folder) with the committed results (AGAINST=results), row by row
	@$(PY) -m replication.replicate compare --profile $(PROFILE) --results $(RESULTS) --against $(AGAINST)

bench: install ## measure speed: library vs a naive MADE (writes RESULTS/benchmarks.md)
	$(PY) benchmarks/bench.py --out $(RESULTS)

lab: install ## JupyterLab on notebooks/ (their defaults write to scratch/, never to results/)
	$(VENV)/bin/jupyter lab notebooks/


install: $(STAMP) ## create .venv with the pinned dependencies

# The stamp's name holds pyproject.toml's checksum: a changed file means a new stamp; its age does not matter
# (a fresh clone's files are all newer than an existing venv's stamp).
$(STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: the CPU wheel here, the registry's build elsewhere; nothing later upgrades it
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $@

test: install ## ruff, the test suite and the smoke profile's notebooks (a few minutes)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q

mutants: install ## deliberate bugs in the core claims, one at a time in a scratch copy: the test that catches each (minutes)
	$(PY) tests/mutants.py

lint: install ## ruff only
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install ## ruff format and fixes
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean-venv:
	rm -rf $(VENV)
