# reconcile — the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUNSTAMP := $(VENV)/.installed-run
PORT   ?= 8990

.PHONY: demo ldap-demo test check lint typecheck unit bench docs venv system-deps clean

# Two stamps: `make demo` installs what running needs; the test and dev tools come with `make test`.
venv: $(STAMP)
$(RUNSTAMP): pyproject.toml
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@echo "Installing reconcile into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install -q --upgrade pip > $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@$(BIN)/python -m pip uninstall -q -y reconcile >> $(VENV)/install.log 2>&1 || true  # our old distribution name
	@$(BIN)/python -m pip install -q -e . >> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $(RUNSTAMP)
$(STAMP): $(RUNSTAMP)
	@echo "Installing the test and dev tools into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install -q -e '.[test,dev]' >> $(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

## demo: start the simulator with the example world, plan desired/ against it; it keeps running (see Next:)
demo: $(RUNSTAMP)
	@bash scripts/demo.sh $(PORT)

## ldap-demo: desired/examples/ldap/ against a throwaway slapd (no root) and the simulator; stops both
ldap-demo: $(RUNSTAMP)
	@bash scripts/ldap-demo.sh $(PORT)

## test: everything — lint, types, unit, simulator, targets, real LDAP/AD servers, CLI end to end, coverage floor
## Tests run in a random order (pytest-randomly); the seed is printed, and `make test SEED=N` repeats a run.
## They run on one worker per core plus one (pytest-xdist): a worker spends part of its time waiting on a
## simulator, server or child process, which the extra worker fills (`make check` too: 64 s against 80 s with
## one per core, on 2 cores). Tests that share a fixed port or server carry an xdist_group.
SEED ?= $(shell od -An -N2 -tu2 /dev/urandom | tr -d ' ')
SEED := $(SEED)
WORKERS ?= $(shell $(PYTHON) -c 'import os; print(len(os.sched_getaffinity(0)) + 1 if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1) + 1)')
WORKERS := $(WORKERS)
XDIST ?= -n $(WORKERS) --dist loadgroup
## Bytecode is cached even where the environment says not to (PYTHONDONTWRITEBYTECODE): otherwise every worker
## and every child `reconcile` process compiles the package and pytest rewrites every test module again, ~20 s
## of CPU per `make check`.
unexport PYTHONDONTWRITEBYTECODE
PYTEST = $(BIN)/python -m pytest -q -p no:cacheprovider -p no:schemathesis -p randomly --randomly-seed=$(SEED) $(XDIST) \
  --record-mode=none --block-network --allowed-hosts='127\.0\.0\.1,localhost,::1'
## mypy runs beside pytest (10 s without its cache: a worker waiting on a server leaves a core free); its
## output follows pytest's, and either failing fails the target.
WITH_MYPY = $(BIN)/mypy > $(VENV)/mypy.log 2>&1 & types=$$!; $(1); tests=$$?; \
  wait $$types; typed=$$?; cat $(VENV)/mypy.log; [ $$tests -eq 0 ] && [ $$typed -eq 0 ]
test: venv system-deps lint
	@echo "Test order: random, seed $(SEED) (repeat this order with: make test SEED=$(SEED))"
	@$(call WITH_MYPY,$(PYTEST) --cov --cov-report= $(PYTEST_ARGS))
	@if [ -z "$(PYTEST_ARGS)" ]; then $(BIN)/python scripts/coverage_floor.py; \
	 else echo "coverage floor not checked: PYTEST_ARGS chose part of the suite"; fi

## check: the edit loop — lint, types and every test but real LDAP/AD servers, kill -9 and the `slow` runs
## (end to end, or a large world whose size is the point)
check: export RECONCILE_EXAMPLES = 0.33  # property tests try a third of their examples (tests/support/examples.py)
check: venv lint
	@echo "Test order: random, seed $(SEED) (repeat this order with: make check SEED=$(SEED))"
	@$(call WITH_MYPY,$(PYTEST) -m "not ldap and not ad and not kill and not slow" $(PYTEST_ARGS))

unit: venv
	$(BIN)/python -m pytest -q -x $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy

## docs: regenerate docs/cli.md from every command's --help (tests/docs/test_docs.py fails when it is out of date)
docs: $(RUNSTAMP)
	$(BIN)/python -m reconcile.cli.reference --write

## bench: the performance table (not part of make test); writes bench/results.json
bench: venv system-deps
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .reconcile .coverage
