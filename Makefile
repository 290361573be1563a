# The course in two commands:  make lab  (open the lessons)  ·  make test  (run every test)
# Both create ./.venv and install everything on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: lab test install browser figures checkpoints bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the browser tests (Playwright drives it; it downloads no browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's chromium for the browser tests…"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The browser tests need Chromium: run 'sudo apt-get install chromium' (Debian/Ubuntu), then 'make test' again." >&2; exit 1; \
	  fi; }

lab: install
	$(BIN)/jupyter lab notebooks/

# One torch thread per process: the suite runs small problems, with a kernel, a server and a browser
# side by side on the machine; extra threads only spin. Instead, one pytest worker per core (pytest-xdist):
# each test file, and each notebook with all its cells in order (nbval), runs whole on one worker. The browser
# tests run last, on their own, so that their page loads and slider moves do not share the cores with a second
# worker (a slow page is not a failing one: pyproject.toml pins the widget front end that waits for its models).
test: install browser
	ODETEACH_FAST=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests notebooks --nbval-lax -p no:cacheprovider -n auto --dist loadfile --durations=15 --ignore=tests/test_browser.py
	ODETEACH_FAST=1 OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests/test_browser.py -p no:cacheprovider --durations=5

figures: install
	$(BIN)/python -m odeteach.figures

checkpoints: install
	$(BIN)/python -m odeteach.train all

bench: install
	status=0; for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || status=1; done; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
