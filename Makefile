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

# Headless Chromium for the test that opens a built page as a reader would (Debian's package).
browser:
	@command -v chromium >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Installing chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    chromium >/dev/null || echo "Could not install chromium: apt-get install chromium" >&2; \
	else \
	  echo "The browser test needs Chromium. On Debian/Ubuntu, as root: apt-get install chromium" >&2; \
	fi

# Jekyll 4 with kramdown (Debian's package) for the test that builds the gallery as a Jekyll site.
jekyll:
	@command -v jekyll >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Installing jekyll for the site test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    jekyll >/dev/null || echo "Could not install jekyll: apt-get install jekyll" >&2; \
	else \
	  echo "The Jekyll site test needs Jekyll. On Debian/Ubuntu, as root: apt-get install jekyll" >&2; \
	fi

# KaTeX for the tests that render every math block as readers' sites do (node and npm are on the machine).
node_modules/.installed: package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info node_modules
