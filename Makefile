# Two commands on a fresh machine: `make lab` runs the whole lab, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_DIR ?= runs/lab
NOTEBOOKS := notebooks/vae_mnist.ipynb notebooks/vae_mnist_exercises.ipynb
# What `make test-fast` leaves out: training models, notebooks in a kernel, the browser, Dask.
FAST := not slow and not kernel and not browser and not dask

.PHONY: lab test test-fast install bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev,class]'
	touch $@

# The whole lab into $(RUN_DIR): the executed notebook and its page, model, history, figures,
# metrics, the report and the self-check's verdict (`vae-lab lab` does it all; this only installs first).
lab: install
	$(BIN)/vae-lab lab --out $(RUN_DIR)

# Every test, and the notebooks re-executed with their outputs compared by nbval (the lab's 5-epoch run is
# shared with the tests of the executed record: conftest.py).
test: install
	$(BIN)/python -m pytest tests --nbval --nbval-current-env $(NOTEBOOKS)

# The quick loop while developing: everything but the marked tests above.
test-fast: install
	$(BIN)/python -m pytest tests -m "$(FAST)"

# Timings the README quotes: training epochs against the matmul floor, and the CLI's start-up.
bench: install
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_cli.py

clean:
	rm -rf runs .pytest_cache
