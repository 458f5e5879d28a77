# Two commands for a newcomer:  `make run` starts the studio, `make test` runs the whole suite.
# Both create .venv and install what they need on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: run test bench clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(PY) requirements.txt scripts/install_torch.sh
	scripts/install_torch.sh $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(PY) app.py $(ARGS)

test: $(VENV)/.installed-dev
	$(PY) -m pytest $(ARGS)

bench: $(VENV)/.installed-dev
	$(PY) bench/overhead.py
	$(PY) bench/startup.py

clean-venv:
	rm -rf $(VENV)
