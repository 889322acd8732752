# wenu-stream: two commands on a fresh machine with Python 3.11+ and Node.js.
#   make demo   set up, start the local AWS stack, simulate ~200 meters for a minute, consume, summarise
#   make test   set up everything (venv, npm emulators, KCL jars, PostgreSQL, chromium) and run the whole suite
#               (make test-quick: the inner loop, without the tests marked slow, e2e or cdk)
#   make bench  side-by-side benchmarks (ratios against floors measured in the same run; ARGS=--quick: smaller)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt 2>/dev/null | md5sum | cut -c1-8)

# make test spreads the test files over this many processes (pytest-xdist; a file's tests stay together): the
# suite mostly waits on servers and daemons, so 3 on a 2-core machine takes less than half the time of 1.
PYTEST_WORKERS ?= 3
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

.PHONY: setup demo test test-fast test-quick lint bench kcl chromium clean constraints

setup: $(STAMP) node_modules/.installed

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required" or 0)'
	@echo "setup: a Python virtual environment in $(VENV) (pip, then every pinned package)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python tools/pip_progress.py constraints.txt -- $(BIN)/python -m pip install -c constraints.txt -e '.[dev,deploy,kcl]'
	rm -f $(VENV)/.installed-* && touch $@

node_modules/.installed: package.json package-lock.json
	command -v node >/dev/null || { echo "Node.js is required (the Kinesis emulators run on it)"; exit 1; }
	@echo "setup: the Kinesis emulators (kinesalite, kinesis-local) with npm ci into node_modules"
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

kcl: setup
	bash tools/kcl-setup.sh

chromium:  # the backoffice's browser tests drive Debian's chromium (apt-get when missing)
	bash tools/ensure-chromium.sh

demo: setup
	$(BIN)/wenu-stream demo $(ARGS)

lint: setup
	$(BIN)/ruff check src tests bench consumers deploy tools
	$(BIN)/ruff format --check src tests bench consumers deploy tools
	$(BIN)/mypy

test: setup kcl chromium lint
	$(PYTEST)

test-fast: setup kcl
	$(PYTEST) -m "not integration and not e2e and not cdk"

test-quick: setup kcl  # the inner loop: every tier but the tests of 3.5 s or more (marked slow), the daemon and CDK ones
	$(PYTEST) -m "not slow and not e2e and not cdk"

bench: setup kcl
	$(BIN)/python bench/run.py $(ARGS)

clean:
	rm -rf .run .pytest_cache .hypothesis

constraints:  # re-pin every dependency (after editing pyproject.toml): a throwaway venv with all extras, then pip freeze
	rm -rf .run/constraints-venv && $(PYTHON) -m venv .run/constraints-venv
	.run/constraints-venv/bin/pip install -q '.[dev,deploy,kcl]'
	{ sed -n '1,2p' constraints.txt; .run/constraints-venv/bin/pip freeze --exclude-editable | grep -v '^wenu-stream' | sort -f; } > constraints.txt.new
	mv constraints.txt.new constraints.txt && rm -rf .run/constraints-venv
