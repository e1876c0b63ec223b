# kdlab: `make run` executes every notebook on its defaults, `make test` runs the test suite.
# Both create the project's virtual environment (.venv) first if it is missing.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PARAMS ?= cpu
RUN ?=
ONLY ?=
FORCE ?=

.PHONY: setup run test test-fast lab book student browser bench compare clean

setup: $(VENV)/.installed

# Reinstall when the dependency list changes. torch is left to torchvision's requirement.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: setup
	$(PY) -m kdlab.tools.run --params $(PARAMS) $(if $(ONLY),--only $(ONLY)) $(if $(FORCE),--force) $(if $(RUN),--out $(RUN))

# The full suite CI runs: unit tests, nbval over every notebook, the book, the browser tests.
test: setup browser
	$(PY) -m pytest

# The unit tests only (pytest markers, conftest.py): a few minutes, for every change.
test-fast: setup
	$(PY) -m pytest -m unit

# The Jupyter Book (HTML in book/_build/html), offline, warnings as errors: from the committed
# notebooks, or from a run folder's executed notebooks and results (make book RUN=runs/cpu).
book: setup
	$(PY) -m kdlab.tools.book $(if $(RUN),--run $(RUN))

# The student edition: copies of the notebooks with every exercise solution replaced by a stub
# (kdlab.tools.student), in student/ or STUDENT=<folder>.
STUDENT ?= student
student: setup
	$(PY) -m kdlab.tools.student --out $(STUDENT)

# Headless Chromium for tests/test_browser.py: the Debian package, installed when missing and
# root (CI); elsewhere the browser tests are skipped with the reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; the browser tests will be skipped"; \
	  else echo "note: chromium is not installed (apt-get install chromium); the browser tests will be skipped"; fi; }

lab: setup
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

# Which numbers of a course run differ from the committed notebooks' (make compare RUN=runs/cpu).
compare: setup
	$(PY) -m kdlab.tools.compare $(or $(RUN),runs/$(PARAMS))

bench: setup
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf runs book/_build .pytest_cache
