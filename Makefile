# Two entry points for a newcomer: `make demo` and `make test`. Both build .venv once (idempotent).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
export MPLBACKEND ?= Agg

.PHONY: setup demo test test-fast lint type bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	# Compile bytecode once: these machines set PYTHONDONTWRITEBYTECODE, which doubles import time.
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null 2>&1 || true
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/marketlab demo

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadgroup tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -x -m "not slow" tests

lint: $(STAMP)
	$(VENV)/bin/ruff check marketlab tests benchmarks

type: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	for f in benchmarks/*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .cache
