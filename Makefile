# make demo  - install into .venv if needed, run the quickstart workflow
# make test  - install into .venv if needed (and PostgreSQL from apt), lint, run the tests
# make test-browser - the browser tests: JupyterLab in Debian's headless Chromium
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
BROWSER_STAMP = $(VENV)/.installed-browser
SUDO    = $(shell test "$$(id -u)" -eq 0 || echo sudo)

.PHONY: demo test test-browser lint bench install clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check sdk jupyter_ext tests benchmarks examples
	$(BIN)/ruff format --check sdk jupyter_ext tests benchmarks examples

# The run-store tests start a real PostgreSQL server (tests/postgres_server.py): Debian's.
test: $(STAMP) lint
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
	$(BIN)/python -m pytest -q

# Playwright drives the system Chromium: its own browser download is never used.
$(BROWSER_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,browser]'
	touch $(BROWSER_STAMP)

test-browser: $(BROWSER_STAMP)
	test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	$(BIN)/python -m pytest -q -m browser tests/browser

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .kernelflow exports build *.egg-info
