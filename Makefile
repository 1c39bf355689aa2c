# `make run`: set up everything and run the runbook on an embedded emulator of its own (a fresh run, whose
# state ends with it).
# `make test`: set up everything and run every test: pytest over tests/ and, in the same session, nbval over the
# notebooks (all of them on one worker, in order: notebooks/conftest.py). pytest runs four workers on two cores:
# each waits part of the time (for a subprocess, a kernel, or a wait's poll interval).
# `make lint`: ruff, and mypy strict on the package.
# `make scan`: Prowler against an emulator of its own after a full prod `up` (scripts/scan.py says what fails it).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# checkov (the CloudFormation export's security scan) pins libraries the product needs newer: own venv.
CHECKOV       := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV)/.installed
# Prowler (the AWS security assessment `make scan` runs) pins its own boto3 and dozens of cloud SDKs: own venv.
PROWLER       := $(VENV)/prowler
PROWLER_STAMP := $(PROWLER)/.installed

.PHONY: setup chromium run test scan lint lab emulator diagrams notebooks-ja clean

# The package's and the tests' modules are compiled once here, so that each process that imports them (every
# command, notebook kernel and test worker) reads them compiled, even where PYTHONDONTWRITEBYTECODE keeps Python
# from writing what it compiles (compileall skips what is up to date).
setup: $(STAMP)
	@scripts/ensure-graphviz.sh
	@$(PY) -m compileall -q pointapp tests notebooks/conftest.py >/dev/null

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "pointapp needs Python 3.10 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

run: setup
	$(VENV)/bin/pointapp runbook --ephemeral

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/pip install --quiet --disable-pip-version-check 'checkov==3.3.30'
	@touch $@

$(PROWLER_STAMP):
	$(PYTHON) -m venv $(PROWLER)
	$(PROWLER)/bin/pip install --quiet --disable-pip-version-check 'prowler==5.46.0'
	@touch $@

# Chromium, a system package like graphviz, for the browser test (tests/test_browser.py) only.
chromium:
	@scripts/ensure-chromium.sh

# The two environments and Chromium install side by side (each waits on downloads much of the time), then the
# tests run. The product's folder is made first: checkov's environment lives in it.
test:
	@mkdir -p $(VENV)
	@$(MAKE) --no-print-directory -j2 setup $(CHECKOV_STAMP) chromium
	POINTAPP_CHECKOV=$(CHECKOV)/bin/checkov $(PY) -m pytest -n 4 --dist loadgroup --nbval-lax --nbval-current-env \
		--ignore=notebooks/ja tests notebooks

# Prowler on the default prod environment, built on an emulator of the scan alone; fails on any Critical or High
# failure on pointapp's resources and on a Medium one that is not a documented choice (scripts/scan.py).
scan:
	@mkdir -p $(VENV)
	@$(MAKE) --no-print-directory -j2 setup $(PROWLER_STAMP)
	$(PY) scripts/scan.py --prowler $(PROWLER)/bin/prowler

# The Japanese notebooks, notebooks/ja/, from the English ones and the catalog notebooks/i18n/ja.yaml. Their
# code is the English notebooks' (tests/test_translations.py checks it), so nbval runs only the English ones.
notebooks-ja: setup
	$(PY) -m pointapp.translate

# The architecture figure of the default prod spec, shown at the top of the README.
diagrams: setup
	$(VENV)/bin/pointapp diagram --format png,svg,dot,mermaid -o diagrams

# ruff over everything; mypy strict over pointapp/ (its settings: [tool.mypy] in pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Interactive work: the shared emulator (started in the background if it is not running; it keeps its state
# until `pointapp emulator --stop`), which every notebook and pointapp command on this machine finds by
# itself, and JupyterLab on the notebooks. JupyterLab refuses to run as root unless told: as root (a
# container, CI) `make lab` tells it.
USER_ID  ?= $(shell id -u)
LAB_ARGS := $(if $(filter 0,$(USER_ID)),--allow-root)

emulator: setup
	$(VENV)/bin/pointapp emulator --start

lab: setup
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[lab]'
	$(VENV)/bin/pointapp emulator --start
	$(VENV)/bin/jupyter lab $(LAB_ARGS) notebooks

clean:
	rm -rf $(VENV) runs .pytest_cache
