# Every target installs what it needs first: on a fresh clone `make test` or `make bench` is enough.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint cards clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: install
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest

cards: install
	$(PY) -m activations

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
