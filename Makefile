# Two entry points for a fresh machine: `make demo` (main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test demo info clean

$(STAMP): setup.py constraints-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints-cpu.txt torch
	$(PY) -m pip install -q -c constraints-cpu.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(PY) -m pytest -q test

demo: setup
	$(VENV)/bin/rgbt-track demo

info: setup
	$(VENV)/bin/rgbt-track info

clean:
	rm -rf $(VENV) build *.egg-info
