# The two commands: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: test demo validate bench clean

$(INSTALLED): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

test: $(INSTALLED)
	$(BIN)/python -m pytest

demo: $(INSTALLED)
	$(BIN)/python -m chalicelib demo

# The benchmarks (bench/), rewriting docs/benchmarks.md; needs gzip and jq.
bench: $(INSTALLED)
	$(BIN)/python -m bench.run

validate: $(INSTALLED)
	$(BIN)/python -m chalicelib validate
	$(BIN)/python -m chalicelib test

clean:
	rm -rf $(VENV) .pytest_cache
