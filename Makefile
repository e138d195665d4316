# The two commands a person types: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-unit test-integration lint bench bench-smoke clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/cio-relay run

# Three test processes, each test module kept in one (its fixtures start real servers).
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 3 --dist loadfile

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit tests/emulator

test-integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration

lint: $(STAMP)
	$(BIN)/ruff check worker tests bench
	$(BIN)/ruff format --check worker tests bench
	$(BIN)/mypy worker

# `make bench BENCH_ARGS="--events 200000 --workers 4"`; `python -m bench --help` lists them.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-smoke: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration/test_bench_smoke.py

# The collector over HTTP (wrk, hey from Debian): `make bench-collector BENCH_ARGS="--workers 1,2,3"`.
.PHONY: bench-collector
bench-collector: $(STAMP)
	$(BIN)/python -m bench.collector $(BENCH_ARGS)

# Rebuild the committed worker/collector/static/tracker.js with terser (npx, npm registry).
.PHONY: tracker
tracker:
	worker/collector/tracker/build.sh

clean:
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache
