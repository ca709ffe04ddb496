# Every target installs what it needs first: on a fresh clone `make test` or `make bench` is enough.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint cards bench report compare perf profile clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,ray,parquet,tensorboard]'
	touch $(STAMP)

lint: install
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest

cards: install
	$(PY) -m activations

SUITE ?= default
STORE ?= results/actbench.sqlite
DEVICE ?= auto

# Train the suite (resumable: runs already in the store are skipped), then build reports/$(SUITE). Datasets missing
# from the data folder (ACTBENCH_DATA, else ~/.cache/actbench/data) are downloaded where there is a network.
bench: install
	$(PY) -m bench.run --suite $(SUITE) --store $(STORE) --device $(DEVICE) --download
	$(PY) -m bench.report --suite $(SUITE) --store $(STORE) --command "make bench SUITE=$(SUITE)"

# Rebuild a report from the store without training.
report: install
	$(PY) -m bench.report --suite $(SUITE) --store $(STORE)

# Your activation against the published suite: make compare ACT=mymodule:MyAct (a module in this folder or on
# PYTHONPATH); trains it and a ReLU control on every configuration and seed, writes reports/compare-<name>/.
ACT ?=
compare: install
	@test -n "$(ACT)" || { echo "error: name the activation: make compare ACT=mymodule:MyAct" >&2; exit 2; }
	$(PY) -m bench.compare $(ACT) --suite $(SUITE) --store $(STORE) --device $(DEVICE) --download

# Training samples/s of each path on DEVICE (auto: the GPU where there is one; make perf DEVICE=cpu to measure the CPU).
perf: install
	$(PY) -m bench.perf --device $(DEVICE)

# Where one CNN run's time goes, phase by phase (ReLU, isrlu, maxout; one thread, as the pool runs it): a few minutes.
profile: install
	$(PY) -m bench.perf --profile relu,isrlu,maxout

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
