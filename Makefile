# Luigi — the two commands: `make run` and `make test`. Everything else is a
# building block of those (or `make bench`).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# Every release product is built with the library's flags, so building one
# never recompiles the modules another needs.
SWIFT_RELEASE_COMMON := -c release -Xswiftc -static-stdlib \
	-Xlinker --version-script=$(CURDIR)/Sources/LuigiC/exports.map \
	-Xlinker -soname=libluigi.so
SWIFT_RELEASE_FLAGS := $(SWIFT_RELEASE_COMMON) --product luigi
LIB := .build/release/libluigi.so
SIM := .build/release/luigi-watermark-sim
EXAMPLE := .build/release/luigi-watermark-example
TABLELOG_BENCH := .build/release/luigi-tablelog-bench
NODE := .build/release/luigi-node
CLUSTER_DEMO := .build/release/luigi-cluster-demo
SWEEP ?= 2000
CFLAGS_EXAMPLE := -std=c11 -Wall -Wextra -Werror -O2 -IInclude
SWIFT_SOURCES := $(shell find Sources Include -type f) Package.swift

.PHONY: run test lib sim node venv test-swift test-c test-python test-watermark test-cluster bench soak clean fuzz geo-demo

# The main job: a 3-node luigi-node cluster on loopback under a client
# workload; the leader is killed with SIGKILL and restarted; every
# acknowledged write is read back and the history checked for linearizability.
run: node
	$(CLUSTER_DEMO)

node: $(NODE) $(CLUSTER_DEMO)

$(NODE) $(CLUSTER_DEMO) &: $(SWIFT_SOURCES)
	swift build $(SWIFT_RELEASE_COMMON) --product luigi-node
	swift build $(SWIFT_RELEASE_COMMON) --product luigi-cluster-demo
	@touch $(NODE) $(CLUSTER_DEMO)

# The simulated geo-replication demo (the earlier `make run`).
geo-demo:
	swift run -c release luigi-geo-demo

lib: $(LIB)

$(LIB): $(SWIFT_SOURCES)
	swift build $(SWIFT_RELEASE_FLAGS)
	@touch $@

# The watermark simulator: seeded sweeps (make test, make soak) and benchmarks.
sim: $(SIM)

$(SIM): $(SWIFT_SOURCES) $(wildcard benchmarks/watermark/*.swift)
	swift build $(SWIFT_RELEASE_COMMON) --product luigi-watermark-sim
	@touch $@

$(EXAMPLE): $(SWIFT_SOURCES) $(wildcard examples/swift/watermark/*.swift)
	swift build $(SWIFT_RELEASE_COMMON) --product luigi-watermark-example
	@touch $@

$(TABLELOG_BENCH): $(SWIFT_SOURCES) $(wildcard benchmarks/tablelog/*.swift)
	swift build $(SWIFT_RELEASE_COMMON) --product luigi-tablelog-bench
	@touch $@

# A venv with the package installed from this tree (pip install .).
venv: $(VENV)/.installed

$(VENV)/.installed: $(LIB) pyproject.toml setup.py $(shell find bindings -type f -not -path '*/__pycache__/*' -not -name '*.so')
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q pytest hypothesis mypy
	LUIGI_LIBRARY=$(CURDIR)/$(LIB) $(VPY) -m pip install -q --force-reinstall --no-deps .
	@touch $@

test: test-swift test-c test-python test-watermark test-cluster

test-swift:
	swift test

test-c: $(LIB) node
	LUIGI_CLUSTER_RUNNER=$(CURDIR)/$(CLUSTER_DEMO) bash Tests/c/run.sh $(LIB)

test-python: venv node
	LUIGI_CLUSTER_RUNNER=$(CURDIR)/$(CLUSTER_DEMO) bash Tests/python/run.sh $(VPY)

# $(SWEEP) random fault schedules of the watermark protocol, every invariant
# checked on each; then the same 40 twice in two processes: equal trace
# hashes; then the Swift example.
test-watermark: $(SIM) $(EXAMPLE)
	$(SIM) sweep 0 $(SWEEP)
	a=$$($(SIM) sweep 0 40 | tail -n 1); b=$$($(SIM) sweep 0 40 | tail -n 1); \
	if [[ "$$a" == "$$b" ]]; then echo "deterministic: $$a"; else echo "NOT deterministic: $$a / $$b"; exit 1; fi
	$(EXAMPLE)

# Real processes: the leader killed with SIGKILL under load three times, each
# time restarted; acknowledged writes read back, history linearizable. Then
# partitions through fault proxies: an isolated leader cannot commit, the
# majority moves on, the heal converges; delayed links still commit.
test-cluster: node
	$(CLUSTER_DEMO) --kills 3 --before-kill-ms 1500 --after-kill-ms 2000
	$(CLUSTER_DEMO) partition --rounds 2
	$(CLUSTER_DEMO) membership
	$(CLUSTER_DEMO) sharded --kills 2

# Long randomized sweeps: the Raft fault schedules (make test runs 1,500), the
# table log's racing writers (make test runs 10 schedules) and the watermark
# schedules (make test runs $(SWEEP)).
soak: $(SIM) node
	$(CLUSTER_DEMO) --kills 20 --before-kill-ms 2000 --after-kill-ms 3000
	$(CLUSTER_DEMO) partition --rounds 20
	$(CLUSTER_DEMO) sharded --kills 20
	LUIGI_RAFT_SWEEP=50000 swift test -c release --filter RaftFaultSweepTests
	LUIGI_SWEEP_SCALE=100 swift test -c release --filter TableLogClusterTests
	$(SIM) sweep 100000 50000

NODE_BENCH := .build/release/luigi-node-bench

$(NODE_BENCH): $(SWIFT_SOURCES) $(wildcard benchmarks/node/*.swift)
	swift build $(SWIFT_RELEASE_COMMON) --product luigi-node-bench
	@touch $@

bench: venv $(SIM) $(TABLELOG_BENCH) node $(NODE_BENCH)
	LUIGI_WATERMARK_SIM=$(CURDIR)/$(SIM) LUIGI_TABLELOG_BENCH=$(CURDIR)/$(TABLELOG_BENCH) bash benchmarks/run.sh $(VPY)

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
