# The two README commands: `make course` (run the course) and `make test` (what CI runs).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CUDA builds from PyPI: they also run on CPU, and unlike the CPU wheel they load torchaudio.
TORCH_PINS := torch==2.11.0 torchaudio==2.11.0 torchvision==0.26.0
STAMP  := $(VENV)/.audiox-installed
export AUDIOX_PROFILE ?= offline
# No hub downloads in tests or CI: the full-profile loaders are tested on local fixtures.
# GPU cells (tag `gpu`) train at AUDIOX_BUDGET: `ci` in the tests, two epochs on a few clips, so CI executes them.
TEST_ENV := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg PYTHONHASHSEED=0 AUDIOX_BUDGET=ci

.PHONY: install course test test-gpu test-colab test-unit test-notebooks notebooks site bench zoo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PINS)
	$(BIN)/python -m pip install --quiet -e ".[full,dev,pretrained,site]"
	# laion-clap declares numpy<2 but runs with numpy 2: install it without its pins.
	$(BIN)/python -m pip install --quiet --no-deps laion-clap==1.1.7
	$(BIN)/python -m ipykernel install --user --name audiox --display-name "Python (audiox)" >/dev/null
	touch $(STAMP)

install: $(STAMP)

# Containers often run as root, which JupyterLab refuses unless told.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

course: install
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/

test: install
	$(TEST_ENV) $(BIN)/python -m pytest -p no:cacheprovider tests audiox --nbval-lax --nbval-current-env notebooks

# Every GPU cell at full budget, on a CUDA machine (refused without one); timings in benchmarks/results/notebooks-gpu.json.
test-gpu: install
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg $(BIN)/python benchmarks/notebooks.py --gpu-cells

# The notebooks' first cells (and notebook 00) on a Colab-like venv: Colab's numpy, torch and ipywidgets and a stand-in
# google.colab, built once into data/cache/colab-venv (or $AUDIOX_COLAB_VENV). Part of `make test` too.
test-colab: install
	$(TEST_ENV) $(BIN)/python -m pytest -p no:cacheprovider tests/test_colab.py

test-unit: install
	$(TEST_ENV) $(BIN)/python -m pytest tests audiox

test-notebooks: install
	$(TEST_ENV) $(BIN)/python -m pytest --nbval-lax --nbval-current-env notebooks

# Re-execute every notebook in place (outputs committed so plots render on GitHub).
notebooks: install
	$(BIN)/python benchmarks/notebooks.py --inplace

# The course site from the executed notebooks (nothing is executed), offline, into build/site/_build/html;
# `python scripts/site.py --serve` serves it, `--screenshots` rewrites docs/site-*.png.
site: install
	$(BIN)/python scripts/site.py

bench: install
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/synth.py
	$(BIN)/python benchmarks/concepts_solver.py
	$(BIN)/python benchmarks/nmf.py
	$(BIN)/python benchmarks/lmac.py
	$(BIN)/python benchmarks/latent.py
	$(BIN)/python benchmarks/compare.py
	$(BIN)/python benchmarks/notebooks.py

# retrain every shipped model, in dependency order (the registry's depends_on: lmac-tiny-clap and l2i-tiny-clap
# explain tiny-clap, l2i-synth-cnn explains synth-cnn, keyword-latent-cnn reads tiny-codec)
zoo: install
	$(BIN)/python -m audiox.models.recipes train tiny-clap
	$(BIN)/python -m audiox.models.recipes train synth-cnn
	$(BIN)/python -m audiox.models.recipes train lmac-tiny-clap
	$(BIN)/python -m audiox.models.recipes train l2i-synth-cnn
	$(BIN)/python -m audiox.models.recipes train l2i-tiny-clap
	$(BIN)/python -m audiox.models.recipes train tiny-codec
	$(BIN)/python -m audiox.models.recipes train keyword-latent-cnn

clean:
	rm -rf $(VENV) data/cache .pytest_cache
