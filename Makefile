# The two commands of the README: `make build` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: build test gallery clean

build: $(STAMP)
	$(BIN)/derive build derivations --out output --format md,json

test: $(STAMP) node_modules/.installed
	$(BIN)/python -m pytest

# torch is installed on its own, pinned: a bare requirement may pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# KaTeX for the tests that render every math block as readers' sites do (node and npm are on the machine).
node_modules/.installed: package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info node_modules
