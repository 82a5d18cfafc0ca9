# The two commands: `make demo` and `make test`. Both create .venv when it is missing.
# Lambda runs what Chalice packages for the interpreter that runs it, and Lambda no longer
# creates python3.11 functions (deprecated 2026-06-30): use 3.13 (or 3.12) when it is there,
# on the PATH or under pyenv; `make PYTHON=...` picks another.
PYTHON ?= $(shell for v in 3.13 3.12; do \
	  if python$$v -c '' 2>/dev/null; then echo python$$v; exit; fi; \
	  p=$$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$$v.*/bin/python$$v 2>/dev/null | tail -n 1); \
	  if [ -n "$$p" ]; then echo $$p; exit; fi; \
	done; echo python3)
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# What the demo needs (requirements-dev.txt and trailguard itself, editable: the `trailguard`
# command), then what the tests add (requirements-test.txt).
DEV_INSTALLED := $(VENV)/.installed-dev
TEST_INSTALLED := $(VENV)/.installed-test
# pytest-xdist workers: one per core; `make test JOBS=0` runs the suite in one process.
JOBS ?= auto

.PHONY: test test-fast lint demo validate bench fuzz clean bytecode

$(DEV_INSTALLED): requirements.txt requirements-dev.txt pyproject.toml
	@want=$$($(PYTHON) -c 'import sys; print(sys.version_info[:2])'); \
	have=$$($(BIN)/python -c 'import sys; print(sys.version_info[:2])' 2>/dev/null); \
	if [ "$$want" != "$$have" ]; then rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); fi
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 12))' || \
	  echo "warning: $$($(BIN)/python -V): chalice deploy would ask Lambda for a runtime it no longer creates; install Python 3.13"
	$(PIP) -r requirements-dev.txt
	$(PIP) --no-deps -e .
	$(BIN)/python -m trailguard.bytecode
	@touch $@

$(TEST_INSTALLED): $(DEV_INSTALLED) requirements-test.txt
	$(PIP) -r requirements-test.txt
	@touch $@

# What reviewers check before reading: lint, format and types (settings in pyproject.toml).
lint: $(TEST_INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -n $(JOBS)

# The unit tier alone: one component at a time, in process (pyproject.toml names the tiers).
test-fast: $(TEST_INSTALLED)
	$(BIN)/python -m pytest -m unit -n 0 -q

demo: $(DEV_INSTALLED)
	$(BIN)/python -m trailguard demo

# The benchmarks (bench/), rewriting docs/benchmarks.md; needs gzip and jq.
bench: $(TEST_INSTALLED)
	$(BIN)/python -m bench.run

# The property-based tests at a larger size (CI runs 150 cases per target), and the load
# test at its full size: 10,000 distinct events and 1,000 duplicates.
fuzz: $(TEST_INSTALLED)
	TRAILGUARD_FUZZ_EXAMPLES=$${TRAILGUARD_FUZZ_EXAMPLES:-3000} TRAILGUARD_LOAD_EVENTS=$${TRAILGUARD_LOAD_EVENTS:-10000} \
	  $(BIN)/python -m pytest tests/test_fuzz.py tests/test_load.py -p no:cacheprovider -n 0

# Checked-hash bytecode for chalicelib/ and app.py, and the precompiled playbook catalog, which
# chalice package/deploy ship and Lambda can use (trailguard/bytecode.py): run before chalice
# package or chalice deploy.
bytecode: $(DEV_INSTALLED)
	$(BIN)/python -m trailguard.bytecode

validate: $(DEV_INSTALLED)
	$(BIN)/python -m trailguard validate
	$(BIN)/python -m trailguard test

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache trailguard.egg-info
