# Luigi — the two commands: `make run` and `make test`. Everything else is a
# building block of those (or `make bench`).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
SWIFT_RELEASE_FLAGS := -c release --product luigi -Xswiftc -static-stdlib \
	-Xlinker --version-script=$(CURDIR)/Sources/LuigiC/exports.map \
	-Xlinker -soname=libluigi.so
LIB := .build/release/libluigi.so
CFLAGS_EXAMPLE := -std=c11 -Wall -Wextra -Werror -O2 -IInclude
SWIFT_SOURCES := $(shell find Sources Include -type f) Package.swift

.PHONY: run test lib venv test-swift test-c test-python bench soak clean fuzz

run:
	swift run -c release luigi-geo-demo

lib: $(LIB)

$(LIB): $(SWIFT_SOURCES)
	swift build $(SWIFT_RELEASE_FLAGS)
	@touch $@

# A venv with the package installed from this tree (pip install .).
venv: $(VENV)/.installed

$(VENV)/.installed: $(LIB) pyproject.toml setup.py $(shell find bindings -type f -not -path '*/__pycache__/*' -not -name '*.so')
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q pytest hypothesis mypy
	LUIGI_LIBRARY=$(CURDIR)/$(LIB) $(VPY) -m pip install -q --force-reinstall --no-deps .
	@touch $@

test: test-swift test-c test-python

test-swift:
	swift test

test-c: $(LIB)
	bash Tests/c/run.sh $(LIB)

test-python: venv
	bash Tests/python/run.sh $(VPY)

# A long randomized sweep of the Raft fault schedules (make test runs 1,500).
soak:
	LUIGI_RAFT_SWEEP=50000 swift test -c release --filter RaftFaultSweepTests

bench: venv
	bash benchmarks/run.sh $(VPY)

clean:
	rm -rf .build $(VENV) build examples/c/out

# Coverage-guided fuzzing (fuzz/README.md): libFuzzer over every target for
# FUZZ_SECONDS each (FUZZ_TARGETS="a b" for some); new coverage is merged
# into fuzz/corpus/<target>, new distinct crashes go to fuzz/crashes/<target>.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz:
	swift build --package-path fuzz -c release -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library
	bash fuzz/run.sh fuzz/.build/release/luigi-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)
