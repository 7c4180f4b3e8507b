# The two commands of the README: `make build` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# TeX for the PDFs: pdflatex for English, xelatex with ctex for Chinese; pdftotext for the tests.
TEX_PACKAGES := texlive-latex-base texlive-latex-recommended texlive-pictures latexmk \
	texlive-xetex texlive-lang-chinese poppler-utils

.PHONY: build test bench corpus clean tex browser jekyll

build: $(STAMP) tex
	$(BIN)/derive build derivations --out output --format md,json,tex,pdf

test: $(STAMP) tex browser jekyll node_modules/.installed
	$(BIN)/python -m pytest

# The five performance figures of the README, measured on this machine (about two minutes).
bench: $(STAMP) tex
	$(BIN)/python benchmarks/bench.py

# Issue 12's measure: each snippet of tests/corpus/ in real torch and through derive, with the count (minutes).
corpus: $(STAMP) tex
	$(BIN)/python -m pytest -m long tests/test_corpus.py -p no:cacheprovider -s

# torch is installed on its own, pinned: a bare requirement may pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Checked on every run (it is quick): installs TeX when a tool is missing and apt-get can run as root
# (Debian, Ubuntu), and otherwise says what to install; without TeX every other format still builds.
tex:
	@missing=""; \
	for tool in latexmk pdflatex xelatex kpsewhich pdftotext; do \
	  command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; \
	done; \
	[ -n "$$missing" ] || kpsewhich ctex.sty >/dev/null 2>&1 || missing=" ctex.sty"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Installing TeX (missing:$$missing)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(TEX_PACKAGES) >/dev/null || echo "Could not install TeX: apt-get install $(TEX_PACKAGES)" >&2; \
	else \
	  echo "PDFs need TeX (missing:$$missing). On Debian/Ubuntu, as root:" >&2; \
	  echo "  apt-get install --no-install-recommends $(TEX_PACKAGES)" >&2; \
	  echo "(elsewhere: TeX Live with latexmk, xelatex and ctex, and poppler's pdftotext)" >&2; \
	fi

# A Debian package a test needs, when its command is missing: $(call debian,COMMAND,PACKAGE,what it is for).
# Installed when apt-get can run as root; otherwise the command to run is printed.
define debian
	@command -v $(1) >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Installing $(2) for $(3)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(2) >/dev/null || echo "Could not install $(2): apt-get install $(2)" >&2; \
	else \
	  echo "$(2) is missing, for $(3). On Debian/Ubuntu, as root: apt-get install $(2)" >&2; \
	fi
endef

# Headless Chromium for the tests that open built pages as a reader would (Debian's package).
browser:
	$(call debian,chromium,chromium,the browser tests)

# Jekyll 4 with kramdown (Debian's package) for the test that builds the gallery as a Jekyll site.
jekyll:
	$(call debian,jekyll,jekyll,the Jekyll site test)

# KaTeX for the tests that render every math block as readers' sites do (node and npm are on the machine).
node_modules/.installed: package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info node_modules
