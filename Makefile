# bceweights: environment, JupyterLab, tests and notebook regeneration (GNU make).
#
#   make lab         create/update .venv, then JupyterLab on notebooks/ (opens 00_start_here)
#   make test        create/update .venv, then unit, property and browser tests, then strict nbval
#                    three times, one after the other: natively, with the CPU's vector paths capped
#                    (nbval-capped) and with training perturbed by 1e-7 (nbval-perturbed)
#   make notebooks   re-execute every notebooks/sources/NN_*.py and store the outputs in notebooks/NN_*.ipynb
#   make screenshots regenerate docs/screenshots/ (each lesson's explorers in JupyterLab; needs chromium)
#   make site        the lessons (stored outputs, not executed) and the API reference as a static website:
#                    build/site/index.html; make site-screenshots photographs it into docs/screenshots/
#   make lock        rebuild requirements/constraints.txt from a fresh install
#   make clean       remove caches and checkpoints; make distclean also removes .venv

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
# Written after a successful install; older than pyproject.toml or the constraints means stale.
STAMP := $(VENV)/.installed
CONSTRAINTS := requirements/constraints.txt
TORCH_VERSION := 2.13.0
# The Triton release torch 2.13.0's CUDA wheels require; the lock pins the same one so that the
# constraints also resolve where pip picks torch's CUDA build.
TRITON_VERSION := 3.7.1
# The lessons extra is the lessons' stack (matplotlib, ipywidgets, ipympl, tqdm, scipy, scikit-learn); the core needs none.
EXTRAS := lessons,notebooks,test,docs

# pip warns once per package about every configured index or find-links location that does not
# exist on this machine; drop those lines and keep every other message.
PIP_NOISE := is ignored: it is neither a file nor a directory
FILTER_PIP_NOISE := { grep -v -- '$(PIP_NOISE)' || true; }

# The environment every notebook kernel gets, identical for `make test` (strict nbval) and
# `make notebooks` (regeneration), so that stored outputs and fresh outputs agree:
# no inherited matplotlib backend (notebooks select ipympl with %matplotlib widget), fixed hash
# seed, one CPU thread (float reductions do not depend on the core count), no GPU (outputs are
# made on the CPU), no debugger or jupyter-path warnings on stderr.
NOTEBOOK_ENV := env -u MPLBACKEND \
	BCEWEIGHTS_NOTEBOOK_ENV=1 \
	PYTHONHASHSEED=0 \
	OMP_NUM_THREADS=1 \
	MKL_NUM_THREADS=1 \
	CUDA_VISIBLE_DEVICES= \
	PYDEVD_DISABLE_FILE_VALIDATION=1 \
	JUPYTER_PLATFORM_DIRS=1

# Another CPU, emulated on this one: PyTorch's ATen kernels without AVX2/AVX-512 (scalar
# "default" code), oneDNN capped at SSE4.1 and MKL at SSE4.2. Stored outputs must not depend on
# the CPU (an Intel Xeon with AVX-512, an AMD EPYC with AVX2, Apple silicon), so strict nbval runs
# once natively and once under these settings against the same stored notebooks.
CAPPED_CPU_ENV := ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2

# Trained figures must be findings, not one trajectory's digits: BCEWEIGHTS_PERTURB=SEED multiplies every
# initial weight of the lessons' models by 1 + 1e-7 u (bceweights/lessons/perturb.py), about one float32
# rounding step, and strict nbval must still pass against the same stored outputs. The pass covers the
# lessons that train a model (the switch changes nothing in the others). make nbval-perturbed PERTURB_SEED=2
# runs it with another draw.
PERTURB_SEED ?= 1
PERTURBED_NOTEBOOKS = $(patsubst notebooks/sources/%.py,notebooks/%.ipynb,$(shell grep -l -E 'TinyUNet|TinyMLP|run_experiment' notebooks/sources/[0-9][0-9]_*.py))

NBVAL_SANITIZE := tests/nbval_sanitize.cfg
# Extra arguments: make test PYTEST_ARGS=-x, make notebooks NB=notebooks/sources/01_weight_vs_pos_weight.py,
# make nbval NBVAL_PATHS=notebooks/05_training_a_rare_class.ipynb, make lab LAB_ARGS="--port 8890".
PYTEST_ARGS ?=
NB ?=
NBVAL_PATHS ?= notebooks/
LAB_ARGS ?=

.PHONY: help env lab test unit nbval nbval-capped nbval-perturbed notebooks screenshots site site-screenshots lock clean distclean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

env: $(STAMP)

$(VENV_PYTHON):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml $(CONSTRAINTS) | $(VENV_PYTHON)
	@echo "Installing bceweights[$(EXTRAS)] into $(VENV), versions pinned by $(CONSTRAINTS)"
	$(VENV_PYTHON) -m pip install -q -c $(CONSTRAINTS) -e ".[$(EXTRAS)]" 2>&1 | $(FILTER_PIP_NOISE)
	@# Build matplotlib's font cache now rather than in a notebook, where its notice on stderr
	@# would differ from the stored outputs.
	$(VENV_PYTHON) -c "import matplotlib.pyplot"
	touch $@

lab: $(STAMP)
	$(VENV_PYTHON) tools/lab.py $(LAB_ARGS)

# The three strict-nbval passes run one after the other, after the unit tests. Side by side they took
# less time, but once a kernel died at start-up (two passes launch kernels at the same moments),
# and a test run that fails for no reason in the code costs more than two minutes.
test: unit
	$(MAKE) --no-print-directory nbval
	$(MAKE) --no-print-directory nbval-capped
	$(MAKE) --no-print-directory nbval-perturbed

unit: $(STAMP)
	$(VENV_PYTHON) -m pytest $(PYTEST_ARGS)

NBVAL_RUN := $(VENV_PYTHON) -m pytest --nbval --nbval-current-env --nbval-sanitize-with $(NBVAL_SANITIZE)

# Each pass keeps its own inductor cache: inductor's on-disk caches do not tell ATEN_CPU_CAPABILITY
# settings apart (lesson 11 compiles with inductor).
INDUCTOR_CACHE := $${TMPDIR:-/tmp}/bceweights-inductor

nbval: $(STAMP)
	@$(call run_nbval,$(NOTEBOOK_ENV) TORCHINDUCTOR_CACHE_DIR=$(INDUCTOR_CACHE)/native)

nbval-capped: $(STAMP)
	@$(call run_nbval,$(NOTEBOOK_ENV) $(CAPPED_CPU_ENV) TORCHINDUCTOR_CACHE_DIR=$(INDUCTOR_CACHE)/capped)

nbval-perturbed: $(STAMP)
	@$(call run_nbval,$(NOTEBOOK_ENV) BCEWEIGHTS_PERTURB=$(PERTURB_SEED) TORCHINDUCTOR_CACHE_DIR=$(INDUCTOR_CACHE)/perturbed,$(PERTURBED_NOTEBOOKS))

# $(call run_nbval,ENV[,PATHS]): strict nbval over PATHS (default $(NBVAL_PATHS)) with the kernel environment ENV.
define run_nbval
if compgen -G "notebooks/*.ipynb" > /dev/null; then \
	echo "$(1) $(NBVAL_RUN) $(or $(2),$(NBVAL_PATHS))"; \
	$(1) $(NBVAL_RUN) $(PYTEST_ARGS) $(or $(2),$(NBVAL_PATHS)); \
else \
	echo "nbval: no notebooks/*.ipynb to check"; \
fi
endef

notebooks: $(STAMP)
	$(NOTEBOOK_ENV) $(VENV_PYTHON) tools/run_notebooks.py $(NB)

# Headless Chromium (/usr/bin/chromium: apt-get install -y chromium) drives JupyterLab.
screenshots: $(STAMP)
	$(VENV_PYTHON) tools/screenshots.py

# The website: Sphinx + myst-nb render notebooks/NN_*.ipynb with their stored outputs (nothing is
# executed) and the API reference from the docstrings. Warnings are errors (nitpicky references, bad
# docstring markup, missing images) and every local link of the built pages is checked; nothing is
# downloaded. Open build/site/index.html, or `python docs/site_tools.py serve`.
site: $(STAMP)
	$(VENV_PYTHON) docs/site_tools.py build

# Landing page and one lesson at 1400 px: docs/screenshots/site_landing.png, site_lesson.png (needs chromium).
site-screenshots: site
	$(VENV_PYTHON) docs/site_tools.py screenshots

# make test builds the site too (tests/browser/test_site.py reads it in Chromium).
test: site

# The lock: install the library ranges into a fresh venv with only torch pinned, then freeze.
LOCK_VENV := .venv-lock
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q "torch==$(TORCH_VERSION)" "triton==$(TRITON_VERSION)" -e ".[$(EXTRAS)]" 2>&1 | $(FILTER_PIP_NOISE)
	{ \
		echo "# The exact versions the notebooks' stored outputs were made with. Written by 'make lock'"; \
		echo "# (pip freeze of a fresh install of .[$(EXTRAS)] with torch==$(TORCH_VERSION), triton==$(TRITON_VERSION)); do not edit by hand."; \
		$(LOCK_VENV)/bin/python -c 'import platform; print(f"# python {platform.python_version()} on {platform.system()} {platform.machine()}")'; \
		$(LOCK_VENV)/bin/python -m pip freeze --exclude-editable | sed -E 's/^(torch==[^+]+)\+.*$$/\1/'; \
	} > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	rm -rf $(LOCK_VENV)
	@echo "Wrote $(CONSTRAINTS); run 'make test' to update .venv with it."

clean:
	find . \( -path ./.venv -o -path ./.git \) -prune -o \
		\( -name __pycache__ -o -name .ipynb_checkpoints -o -name .pytest_cache \
		   -o -name .hypothesis -o -name '*.egg-info' \) -prune -exec rm -rf {} +
	rm -rf build dist $(LOCK_VENV)

distclean: clean
	rm -rf $(VENV)
