# Two commands on a fresh machine: `make lab` runs the whole lab, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_DIR ?= runs/lab
NOTEBOOK := notebooks/vae_mnist.ipynb

.PHONY: lab test install bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,class]'
	touch $@

# The whole lab into $(RUN_DIR): the executed notebook and its page, model, history, figures,
# metrics, the report and the self-check's verdict (`vae-lab lab` does it all; this only installs first).
lab: install
	$(BIN)/vae-lab lab --out $(RUN_DIR)

# Unit tests, then the notebook re-executed and its outputs compared by nbval.
test: install
	$(BIN)/python -m pytest tests --nbval --nbval-current-env $(NOTEBOOK)

# Timings the README quotes: training epochs against the matmul floor, and the CLI's start-up.
bench: install
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_cli.py

clean:
	rm -rf runs .pytest_cache
