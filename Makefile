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

# Tests run in up to 4 processes (pytest-xdist): the suite is mostly waiting on subprocesses.
test: $(VENV)/.installed-test
	$(VENV)/bin/pytest tests -q --numprocesses=auto --maxprocesses=4

bench: $(VENV)/.installed-bench
	taskset -c 0 $(PY) benchmarks/run.py
	taskset -c 0 $(PY) benchmarks/deid04.py
	taskset -c 0 $(PY) benchmarks/show_start.py
	taskset -c 0 $(PY) benchmarks/archives.py

clean:
	rm -rf $(VENV) build *.egg-info src/deid_fast/*.c src/deid_fast/*.html benchmarks/corpus

# --- fuzzing (issue 4): `make fuzz FUZZ_SECONDS=600`; see fuzz/README.md ---------------------
# An AddressSanitizer + libFuzzer instrumented copy of the package is built in fuzz/build with
# clang (never touching .venv or the main build), atheris runs fuzz/fuzz_header.py on it.
FUZZ_SECONDS ?= 600
FUZZ_CC ?= clang-14
FUZZ_VENV := fuzz/.venv
FUZZ_PY := $(FUZZ_VENV)/bin/python
FUZZ_CFLAGS := -fsanitize=address,fuzzer-no-link -g -O1 -fno-omit-frame-pointer

.PHONY: fuzz fuzz-build

$(FUZZ_PY):
	$(PYTHON) -m venv $(FUZZ_VENV)
	$(FUZZ_PY) -m pip --disable-pip-version-check install --quiet --upgrade pip
	$(FUZZ_PY) -m pip --disable-pip-version-check install --quiet atheris "pydicom>=3,<4" \
	    "Cython>=3.0,<4" "setuptools>=77" deid-data pydicom-data

fuzz/build/.built: $(FUZZ_PY) $(SOURCES)
	@command -v $(FUZZ_CC) >/dev/null || { apt-get update -qq && \
	    apt-get install -y -qq clang-14 libclang-rt-14-dev >/dev/null; } || \
	    { echo "clang is needed: apt-get install clang-14 libclang-rt-14-dev"; exit 1; }
	rm -rf fuzz/build && mkdir -p fuzz/build
	cp -r src deid_fast setup.py pyproject.toml README.md fuzz/build/
	find fuzz/build \( -name '*.c' -o -name '*.so' -o -name __pycache__ \) -prune -exec rm -rf {} +
	cd fuzz/build && CC="$(FUZZ_CC)" LDSHARED="$(FUZZ_CC) -shared" CFLAGS="$(FUZZ_CFLAGS)" \
	    LDFLAGS="-fsanitize=address,fuzzer-no-link" ../.venv/bin/python setup.py -q build_ext --inplace
	touch $@

fuzz/corpus/.seeded: $(FUZZ_PY) fuzz/make_seeds.py
	$(FUZZ_PY) fuzz/make_seeds.py fuzz/corpus
	touch $@

fuzz-build: fuzz/build/.built fuzz/corpus/.seeded

fuzz: fuzz-build
	fuzz/run.sh $(FUZZ_SECONDS)
