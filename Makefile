# kdlab: `make run` executes every notebook on its defaults, `make test` runs the test suite.
# Both create the project's virtual environment (.venv) first if it is missing.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PARAMS ?= cpu
RUN ?=
ONLY ?=
FORCE ?=

.PHONY: setup run test lab book bench clean

setup: $(VENV)/.installed

# Reinstall when the dependency list changes. torch is left to torchvision's requirement.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: setup
	$(PY) -m kdlab.run --params $(PARAMS) $(if $(ONLY),--only $(ONLY)) $(if $(FORCE),--force) $(if $(RUN),--out $(RUN))

test: setup
	$(PY) -m pytest

lab: setup
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

bench: setup
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf runs book/_build .pytest_cache
