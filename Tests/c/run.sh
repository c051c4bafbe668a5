#!/usr/bin/env bash
# Tests/c/run.sh LIBPATH — the C ABI tests of libluigi.so.
#
#   - luigi.h compiles on its own as C11 and as C++ with warnings as errors
#   - the golden symbol list equals the functions luigi.h declares
#   - examples/c/*.c and Tests/c/extreme_step.c (every Raft message kind with
#     extreme numbers stepped into every role, in child processes) build with
#     -std=c11 -Wall -Wextra -Werror into examples/c/out/ (linked to LIBPATH
#     with an rpath) and run cleanly
#   - examples/c/client.c runs against a live 3-node cluster started by
#     $LUIGI_CLUSTER_RUNNER (luigi-cluster-demo exec)
#   - the library needs no Swift runtime library (built with -static-stdlib)
#   - its SONAME is libluigi.so
#   - it exports exactly the golden list (nm -D --defined-only --extern-only:
#     local entries that the linker leaves in .dynsym are not exports)
#
# Prints one line per check and finally "c: N passed, M failed" (N and M
# include bad_input's and extreme_step's own assertions); exits non-zero if any check failed.
set -uo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 path/to/libluigi.so" >&2
    exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LIB="$1"
[[ "$LIB" = /* ]] || LIB="$PWD/$LIB"
CC="${CC:-cc}"
CXX="${CXX:-c++}"
INCLUDE="$ROOT/Include"
GOLDEN="$ROOT/Tests/c/exported_symbols.txt"
OUT="$ROOT/examples/c/out"
LOG="$OUT/logs"
CFLAGS=(-std=c11 -Wall -Wextra -Werror -O2 -I"$INCLUDE")
mkdir -p "$OUT" "$LOG"

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() { failed=$((failed + 1)); echo "FAIL - $1"; }
# show LOGFILE: indent a log into the output (first 80 lines).
show() { sed -n '1,80p' "$1" | sed 's/^/       /'; }

finish() {
    echo "c: $passed passed, $failed failed"
    [[ $failed -eq 0 ]]
    exit $?
}

if [[ ! -f "$LIB" ]]; then
    fail "library exists at $LIB"
    finish
fi
LIBDIR="$(cd "$(dirname "$LIB")" && pwd)"

# --- the header alone --------------------------------------------------------
if printf '#include "luigi.h"\nint main(void) { return luigi_version_number() == 0; }\n' |
    "$CC" -std=c11 -Wall -Wextra -Werror -pedantic -I"$INCLUDE" -fsyntax-only -x c - >"$LOG/header_c.log" 2>&1; then
    pass "luigi.h compiles alone as C11 (-Wall -Wextra -Werror -pedantic)"
else
    fail "luigi.h compiles alone as C11 (-Wall -Wextra -Werror -pedantic)"; show "$LOG/header_c.log"
fi
if command -v "$CXX" >/dev/null 2>&1; then
    if printf '#include "luigi.h"\nint main() { return luigi_version_number() == 0; }\n' |
        "$CXX" -std=c++17 -Wall -Wextra -Werror -I"$INCLUDE" -fsyntax-only -x c++ - >"$LOG/header_cxx.log" 2>&1; then
        pass "luigi.h compiles alone as C++17"
    else
        fail "luigi.h compiles alone as C++17"; show "$LOG/header_cxx.log"
    fi
fi

# --- golden list vs the header ----------------------------------------------
# Every function luigi.h declares (comments stripped by the preprocessor).
"$CC" -E -P -I"$INCLUDE" "$INCLUDE/luigi.h" 2>/dev/null |
    grep -oE '\bluigi_[a-z0-9_]+[[:space:]]*\(' | sed -E 's/[[:space:]]*\($//' | LC_ALL=C sort -u \
    >"$OUT/header_symbols.txt"
if LC_ALL=C sort -c "$GOLDEN" 2>/dev/null && diff -u "$GOLDEN" "$OUT/header_symbols.txt" >"$LOG/golden_vs_header.diff"; then
    pass "exported_symbols.txt is sorted and lists exactly the $(wc -l <"$GOLDEN") functions of luigi.h"
else
    fail "exported_symbols.txt is sorted and lists exactly the functions of luigi.h"; show "$LOG/golden_vs_header.diff"
fi

# --- build and run the examples and the C tests ------------------------------
for src in "$ROOT"/examples/c/{quickstart,bad_input,raft_transport,watermark,table_log}.c "$ROOT/Tests/c/extreme_step.c"; do
    name="$(basename "$src" .c)"
    if "$CC" "${CFLAGS[@]}" "$src" -o "$OUT/$name" "$LIB" -Wl,-rpath,"$LIBDIR" -lm \
        >"$LOG/$name.build.log" 2>&1; then
        pass "build ${src#$ROOT/}"
    else
        fail "build ${src#$ROOT/}"; show "$LOG/$name.build.log"
        continue
    fi
    # The example must find the library through its rpath alone.
    env -u LD_LIBRARY_PATH timeout 300 "$OUT/$name" >"$LOG/$name.run.log" 2>&1
    rc=$?
    # A program's own assertions ("name: N passed, M failed") count as checks too.
    if summary="$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed\$" "$LOG/$name.run.log")"; then
        read -r inner_passed inner_failed < <(echo "$summary" | sed -E 's/^[a-z_]+: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/')
        passed=$((passed + inner_passed))
        failed=$((failed + inner_failed))
    fi
    if [[ $rc -eq 0 ]]; then
        pass "run $name ($(tail -n 1 "$LOG/$name.run.log"))"
    else
        fail "run $name (exit $rc)"
        grep -E '^(FAIL|quickstart.c)' "$LOG/$name.run.log" | sed -n '1,60p' | sed 's/^/       /'
        grep -vE '^(FAIL|quickstart.c)' "$LOG/$name.run.log" | tail -n 20 | sed 's/^/       /'
    fi
done

# --- the TCP client against a live cluster -----------------------------------
# LUIGI_CLUSTER_RUNNER is luigi-cluster-demo: `exec` starts 3 luigi-node
# processes and runs the client with their endpoints and secret in its env.
if [[ -z "${LUIGI_CLUSTER_RUNNER:-}" ]]; then
    fail "run client (set LUIGI_CLUSTER_RUNNER to luigi-cluster-demo; make test-c does)"
elif "$CC" "${CFLAGS[@]}" "$ROOT/examples/c/client.c" -o "$OUT/client" "$LIB" -Wl,-rpath,"$LIBDIR" \
    >"$LOG/client.build.log" 2>&1; then
    pass "build examples/c/client.c"
    env -u LD_LIBRARY_PATH timeout 300 "$LUIGI_CLUSTER_RUNNER" exec -- "$OUT/client" >"$LOG/client.run.log" 2>&1
    rc=$?
    if summary="$(grep -E "^client: [0-9]+ passed, [0-9]+ failed\$" "$LOG/client.run.log")"; then
        read -r inner_passed inner_failed < <(echo "$summary" | sed -E 's/^client: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/')
        passed=$((passed + inner_passed))
        failed=$((failed + inner_failed))
    fi
    if [[ $rc -eq 0 ]]; then
        pass "run client against a 3-node luigi-node cluster ($(tail -n 1 "$LOG/client.run.log"))"
    else
        fail "run client against a 3-node luigi-node cluster (exit $rc)"; show "$LOG/client.run.log"
    fi
else
    fail "build examples/c/client.c"; show "$LOG/client.build.log"
fi

# --- dependencies: no Swift runtime -----------------------------------------
if ldd "$LIB" >"$LOG/ldd.log" 2>&1; then
    if grep -E 'libswift|libFoundation|lib_Foundation|libdispatch|libBlocksRuntime|libicu' "$LOG/ldd.log" >"$LOG/ldd_swift.log"; then
        fail "ldd lists no Swift runtime library"; show "$LOG/ldd_swift.log"
    elif grep -q 'not found' "$LOG/ldd.log"; then
        fail "ldd resolves every dependency"; show "$LOG/ldd.log"
    else
        pass "ldd lists no Swift runtime library ($(awk '{print $1}' "$LOG/ldd.log" | tr '\n' ' '))"
    fi
else
    fail "ldd $LIB"; show "$LOG/ldd.log"
fi

# --- SONAME ------------------------------------------------------------------
soname="$(objdump -p "$LIB" 2>/dev/null | awk '$1 == "SONAME" {print $2}')"
if [[ "$soname" == "libluigi.so" ]]; then
    pass "SONAME is libluigi.so"
else
    fail "SONAME is libluigi.so (found '${soname:-none}')"
fi

# --- exported symbols ---------------------------------------------------------
# Defined dynamic symbols, minus the version-definition markers (type A) a
# linker version script adds; "@@LUIGI_0"-style suffixes removed.
nm -D --defined-only --extern-only "$LIB" 2>"$LOG/nm.log" |
    awk 'NF >= 3 && $2 != "A" {print $3}' | sed -E 's/@.*$//' | LC_ALL=C sort -u \
    >"$OUT/exported_symbols.actual.txt"
if [[ -s "$OUT/exported_symbols.actual.txt" ]] &&
    diff -u "$GOLDEN" "$OUT/exported_symbols.actual.txt" >"$LOG/exports.diff"; then
    pass "exports exactly the $(wc -l <"$GOLDEN") symbols of Tests/c/exported_symbols.txt"
else
    fail "exports exactly the symbols of Tests/c/exported_symbols.txt (- missing, + extra)"
    show "$LOG/exports.diff"
    [[ -s "$OUT/exported_symbols.actual.txt" ]] || show "$LOG/nm.log"
fi
# Every exported function is code (T), not data.
if nm -D --defined-only --extern-only "$LIB" 2>/dev/null | awk 'NF >= 3 && $3 ~ /^luigi_/ && $2 != "T" {bad=1; print} END {exit bad}' >"$LOG/exports_types.log"; then
    pass "every exported luigi_ symbol is a function"
else
    fail "every exported luigi_ symbol is a function"; show "$LOG/exports_types.log"
fi

finish
