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
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Execute the notebook top to bottom into $(RUN_DIR): executed .ipynb, its HTML, the model,
# history, figures and metrics, and the one-page report.
lab: install
	mkdir -p $(RUN_DIR)
	VAE_LAB_RUN_DIR=$(abspath $(RUN_DIR)) $(BIN)/jupyter nbconvert --to notebook --execute $(NOTEBOOK) \
		--ExecutePreprocessor.timeout=1800 --output-dir $(RUN_DIR) --output vae_mnist.ipynb
	$(BIN)/jupyter nbconvert --to html $(RUN_DIR)/vae_mnist.ipynb --output-dir $(RUN_DIR)
	$(BIN)/vae-lab report $(RUN_DIR)
	$(BIN)/vae-lab grade $(RUN_DIR)/vae_mnist.ipynb

# Unit tests, then the notebook re-executed and its outputs compared by nbval.
test: install
	$(BIN)/python -m pytest tests --nbval --nbval-current-env $(NOTEBOOK)

bench: install
	$(BIN)/python benchmarks/bench_train.py

clean:
	rm -rf runs .pytest_cache
