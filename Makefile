# deid_fast: `make demo` and `make test` set up everything they need in .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
SOURCES := $(wildcard src/deid_fast/*.pyx src/deid_fast/*.pxd deid_fast/*.py deid_fast/*.json) \
           setup.py pyproject.toml

.PHONY: demo test bench install clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# One stamp per set of extras; the package is rebuilt whenever a source changes.
# Generated C files are removed first so that a change of build settings always takes effect.
$(VENV)/.installed-%: $(PY) $(SOURCES)
	rm -f src/deid_fast/*.c
	$(PIP) install --quiet ".[$*]"
	touch $@

install: $(VENV)/.installed-data

demo: $(VENV)/.installed-data
	$(PY) -I -m deid_fast.demo

test: $(VENV)/.installed-test
	$(VENV)/bin/pytest tests -q

bench: $(VENV)/.installed-bench
	taskset -c 0 $(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info src/deid_fast/*.c src/deid_fast/*.html benchmarks/corpus
