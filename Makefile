# Two entry points for a newcomer: `make demo` and `make test`. Both build .venv once (idempotent).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export MPLBACKEND ?= Agg

.PHONY: setup demo test test-full test-readme test-fast test-flaky mutants lint type bench docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	# Compile bytecode once: these machines set PYTHONDONTWRITEBYTECODE, which doubles import time.
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null 2>&1 || true
	# Compile the numba kernels of `make demo` into NUMBA_CACHE_DIR once (the demo's steps on a small temporary
	# store), so the first demo starts warm instead of compiling for a minute.
	$(VENV)/bin/marketlab warmup
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/marketlab demo

# The suite is split in two, and CI (.ci/run) runs both, so every test runs there exactly once:
# `make test` is everything not marked slow (under 5 minutes on an idle 2-core machine, see the README);
# `make test-full` runs only the tests marked `@pytest.mark.slow` (deep-BSDE reference cases, training on the real
# datasets, the Ray cluster, the other kill points of the fault tests, ...).
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadgroup -m "not slow" tests

test-full: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadgroup -m slow tests

# The README's "Using it" commands, top to bottom in a temporary copy of the checkout (tests/readme; minutes).
test-readme: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m readme tests/readme

# Flake hunt: the whole suite (slow tests included) once per seed, test order shuffled by the seed (so xdist workers
# also get other neighbours), global RNGs seeded per test from the seed, Hypothesis drawing fresh examples. Stops at
# the first red run and prints the seed that reproduces it: `make test-flaky FLAKY_SEEDS=<seed>`.
FLAKY_SEEDS ?= 1 2 3 4 5
test-flaky: $(STAMP)
	for s in $(FLAKY_SEEDS); do \
	  echo "== test-flaky seed $$s"; \
	  HYPOTHESIS_PROFILE=explore $(PY) -m pytest -q -n 2 --dist loadgroup -p no:cacheprovider --seed $$s --shuffle tests \
	    || { echo "test-flaky: red with seed $$s"; exit 1; }; \
	done

# Planted bugs in the matching engine, LOBSTER verifier, IC functions, label builders and backtest costs
# (tests/mutants/mutants.toml), each run against its tests in a temporary copy; prints the kill rate. ~20 min.
mutants: $(STAMP)
	$(PY) tests/mutants/run.py

# The inner loop while editing: unit and property tests not marked slow, stopping at the first failure (no real
# datasets, no fault-injection subprocesses).
test-fast: $(STAMP)
	$(PY) -m pytest -q -x -n 2 --dist loadgroup -m "not slow" tests/unit tests/property

lint: $(STAMP)
	$(VENV)/bin/ruff check marketlab tests benchmarks

type: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,bench]'
	$(PY) -m pip install -q --no-deps -c constraints.txt hftbacktest
	for f in benchmarks/*.py; do case $$f in */runlog.py) continue;; esac; $(PY) $$f || exit 1; done

# docs/specs.md is generated from the spec config classes; tests/unit/test_spec_docs.py fails when it is stale.
docs: $(STAMP)
	$(VENV)/bin/marketlab spec docs --out docs/specs.md

clean:
	rm -rf $(VENV) .cache
