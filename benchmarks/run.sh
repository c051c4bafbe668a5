#!/usr/bin/env bash
# benchmarks/run.sh VENV_PYTHON [--quick]
#
# Runs every Luigi benchmark side by side with its peer, pycrdt (Yrs):
#   1. installs pycrdt into the venv if it is missing;
#   2. builds benchmarks/c/bench_commit.c against the libluigi.so that the
#      venv's luigi_node ships (so C and Python measure the same library);
#   3. runs the C benchmark, then benchmarks/bench.py;
#   4. writes benchmarks/results/results.json and benchmarks/results/RESULTS.md;
#   5. runs the Raft benchmarks (benchmarks/raft, Swift release build) beside
#      SQLite and writes benchmarks/results/raft.json and RAFT.md;
#   6. runs watermark commit beside two-phase commit over Raft
#      (benchmarks/watermark_bench.py with luigi-watermark-sim, from
#      $LUIGI_WATERMARK_SIM: make bench builds it) and writes
#      benchmarks/results/watermark.json and WATERMARK.md;
#   7. runs the table log (luigi-tablelog-bench, from $LUIGI_TABLELOG_BENCH:
#      make bench builds it) beside SQLite (benchmarks/tablelog_bench.py) and
#      writes benchmarks/results/tablelog.json and TABLELOG.md;
#   8. runs luigi-node beside etcd (benchmarks/node_bench.py: installs
#      Debian's etcd-server and the etcd3 package if missing; binaries from
#      $LUIGI_NODE_BIN, default .build/release) and writes node.json, NODE.md.
# --quick runs fewer repetitions (a smoke test, not for publishing).
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 VENV_PYTHON [--quick]" >&2
    exit 2
fi
PY="$1"
shift
QUICK=()
C_BATCHES=1000
if [[ "${1:-}" == "--quick" ]]; then
    QUICK=(--quick)
    C_BATCHES=50
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT="$HERE/results"
BUILD="$HERE/c/out"
mkdir -p "$OUT" "$BUILD"
started=$(date +%s)

if ! "$PY" -c 'import pycrdt' 2>/dev/null; then
    echo "== installing pycrdt into $("$PY" -c 'import sys; print(sys.prefix)')"
    "$PY" -m pip install -q pycrdt
fi
"$PY" -c 'import luigi_node' || {
    echo "luigi_node is not importable from $PY (run: make venv)" >&2
    exit 1
}

LIB="${LUIGI_LIBRARY:-$("$PY" -c 'import luigi_node; print(luigi_node.library_path())')}"
LIBDIR="$(cd "$(dirname "$LIB")" && pwd)"
echo "== building the C benchmark against $LIB"
"${CC:-cc}" -std=c11 -Wall -Wextra -Werror -O2 -I"$ROOT/Include" \
    "$HERE/c/bench_commit.c" -o "$BUILD/bench_commit" "$LIB" -Wl,-rpath,"$LIBDIR"

echo "== C ABI: commit / encode / decode / apply ($C_BATCHES batches)"
"$BUILD/bench_commit" "$C_BATCHES" >"$BUILD/bench_commit.json"
cat "$BUILD/bench_commit.json"

echo "== Python: Luigi vs pycrdt"
"$PY" "$HERE/bench.py" --out "$OUT" --c-results "$BUILD/bench_commit.json" "${QUICK[@]}"

echo "== Raft: library overhead and durable commit (luigi-raft-bench) vs SQLite"
(cd "$ROOT" && swift build -c release --product luigi-raft-bench >/dev/null)
"$PY" "$HERE/raft_bench.py" "$ROOT/.build/release/luigi-raft-bench" "$OUT" "${QUICK[@]}"


echo "== Watermark commit vs two-phase commit over Raft (luigi-watermark-sim)"
SIM="${LUIGI_WATERMARK_SIM:-$ROOT/.build/release/luigi-watermark-sim}"
[[ -x "$SIM" ]] || { echo "no simulator at $SIM (run: make sim)" >&2; exit 1; }
(cd "$HERE" && "$PY" watermark_bench.py "$SIM" "$OUT" "${QUICK[@]}")

echo "== Table log: durable commits and validation cost (luigi-tablelog-bench) vs SQLite"
TABLELOG="${LUIGI_TABLELOG_BENCH:-$ROOT/.build/release/luigi-tablelog-bench}"
[[ -x "$TABLELOG" ]] || { echo "no table-log benchmark at $TABLELOG (run: make bench)" >&2; exit 1; }
(cd "$HERE" && "$PY" tablelog_bench.py "$TABLELOG" "$OUT" "${QUICK[@]}")

echo "== luigi-node beside etcd (3 members each, loopback, fsync on)"
NODE_BIN="${LUIGI_NODE_BIN:-$ROOT/.build/release}"
for b in luigi-node luigi-node-bench luigi-cluster-demo; do
    [[ -x "$NODE_BIN/$b" ]] || { echo "no $b in $NODE_BIN (run: make bench)" >&2; exit 1; }
done
if ! command -v etcd >/dev/null 2>&1; then
    echo "== installing etcd-server (Debian)"
    apt-get install -y -qq etcd-server >/dev/null || { apt-get update -qq && apt-get install -y -qq etcd-server >/dev/null; }
fi
if ! "$PY" -c 'import etcd3' 2>/dev/null; then
    # etcd3's generated protobuf code needs the pre-4 protobuf runtime.
    "$PY" -m pip install -q etcd3 "protobuf<3.21"
fi
SECONDS_PER_CELL=4
REPS=3
if [[ ${#QUICK[@]} -gt 0 ]]; then SECONDS_PER_CELL=1; REPS=1; fi
"$PY" "$HERE/node_bench.py" "$NODE_BIN" "$OUT" --seconds "$SECONDS_PER_CELL" --reps "$REPS"

echo "== wrote $OUT/results.json, RESULTS.md, raft.json, RAFT.md, watermark.json, WATERMARK.md, tablelog.json, TABLELOG.md, node.json and NODE.md in $(( $(date +%s) - started )) s"
