# vx-engine developer entry points. `make demo` and `make test` are the two a new user needs.
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.vx-setup
PYTEST_ARGS ?=

.PHONY: setup test demo bench lint gpu-check clean

setup: $(STAMP)

$(STAMP): pyproject.toml tools/setup.sh
	bash tools/setup.sh
	touch $(STAMP)

# pytest exit 5 means "no tests collected": a failure for us, and make keeps it non-zero.
test: setup
	TRITON_INTERPRET=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

demo: setup
	$(BIN)/python -m engine.demo

bench: setup
	$(BIN)/python -m benchmarks.run_cpu

lint: setup
	$(BIN)/ruff check engine export kernels tests benchmarks
	$(BIN)/ruff format --check engine export kernels tests benchmarks

gpu-check: setup
	bash tools/gpu_check.sh

clean:
	rm -rf $(VENV) .pytest_cache
