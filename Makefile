# vx-engine developer entry points. `make demo` and `make test` are the two a new user needs.
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.vx-setup
PYTEST_ARGS ?=

.PHONY: setup test demo bench lint gpu-check device-kit clean

setup: $(STAMP)

$(STAMP): pyproject.toml tools/setup.sh
	bash tools/setup.sh
	touch $(STAMP)

# pytest exit 5 means "no tests collected": a failure for us, and make keeps it non-zero.
test: setup
	TRITON_INTERPRET=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

demo: setup
	$(BIN)/python -m vx_engine.demo

bench: setup
	$(BIN)/python -m benchmarks.run_cpu

lint: setup
	$(BIN)/ruff check engine export kernels tests benchmarks
	$(BIN)/ruff format --check engine export kernels tests benchmarks

# No `setup` prerequisite: a GPU machine may have no network. tools/gpu_check.sh uses
# .venv when there is one, else python3, and installs what is missing from WHEELS=dir.
gpu-check:
	bash tools/gpu_check.sh

device-kit:
	bash tools/device_kit.sh

clean:
	rm -rf $(VENV) .pytest_cache
