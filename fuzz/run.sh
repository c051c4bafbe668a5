#!/usr/bin/env bash
# Runs luigi-fuzz (built by `make fuzz`) over each target, one libFuzzer
# process at a time:
#   fuzz/run.sh <luigi-fuzz binary> <seconds per target> [target...]
# For each target: a scratch corpus (fuzz/corpus/<t> + fresh seeds) under
# fuzz/.build/fuzz-work/<t>, fuzzed for <seconds>. libFuzzer stops at a
# crash, so it is restarted on the grown scratch corpus until the time is
# used (at most FUZZ_MAX_RESTARTS runs). New coverage is merged back into
# fuzz/corpus/<t> (-merge=1 -set_cover_merge=1, minimal); crash inputs are triaged — rerun with the
# Swift backtracer, keyed by the first source frame (file:line) — and one
# input per new key is copied to fuzz/crashes/<t>/. Prints a summary line
# per target.
set -uo pipefail

bin=$(realpath "$1")
seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
max_restarts=${FUZZ_MAX_RESTARTS:-200}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(LUIGI_FUZZ_LIST=1 "$bin")
fi

# file:line of the first frame in our sources, plus the failure text.
triage() {  # <target> <input>
    local out key why
    out=$(LUIGI_FUZZ_TARGET=$1 SWIFT_BACKTRACE=enable=yes,interactive=no,color=no \
        timeout 120 "$bin" -handle_ill=0 -handle_trap=0 -handle_abrt=0 -handle_segv=0 -handle_bus=0 "$2" 2>&1)
    key=$(grep -E '^ *[0-9]+ .* at /' <<<"$out" | grep -v -e '<compiler-generated>' -e '/swift/stdlib/' \
        -e '/llvm-project/' -e '/build-user/' -e 'fuzzCheck(' | head -1 | sed -E 's|.* at ||; s|:[0-9]+$||; s|^'"$repo"'/||')
    why=$(grep -m1 -oE 'Fatal error: .*|Swift runtime failure: [^ ].* in |deadly signal|ERROR: .*' <<<"$out" | sed -E 's/ in $//')
    if [ -z "$key" ]; then
        if grep -q 'Done [0-9]* runs\|Executed .* in' <<<"$out" && ! grep -q 'crashed' <<<"$out"; then key=none; else key=unknown; fi
    fi
    printf '%s\t%s\n' "$key" "${why:-?}"
}

total_execs=0
summary=()
for t in "${targets[@]}"; do
    work=$here/.build/fuzz-work/$t
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/artifacts" "$repo/fuzz/corpus/$t" "$repo/fuzz/crashes/$t"
    cp "$repo/fuzz/corpus/$t/." "$work/corpus/" -r 2>/dev/null
    LUIGI_FUZZ_WRITE_SEEDS=$work/seeds "$bin" >/dev/null 2>&1
    cp "$work/seeds/$t/." "$work/corpus/" -r 2>/dev/null

    dict=()
    case $t in raft_step_* | wal | shard_step | coordinator_step) dict=(-dict="$here/chunks.dict") ;; esac
    execs=0
    runs=0
    start=$SECONDS
    end=$((SECONDS + seconds))
    while [ $((end - SECONDS)) -gt 0 ] && [ "$runs" -lt "$max_restarts" ]; do
        log=$work/run-$runs.log
        LUIGI_FUZZ_TARGET=$t SWIFT_BACKTRACE=enable=no "$bin" -max_total_time=$((end - SECONDS)) "${dict[@]}" \
            -print_final_stats=1 -timeout=20 -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/" \
            "$work/corpus" >"$log" 2>&1
        rc=$?
        n=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
        execs=$((execs + ${n:-0}))
        runs=$((runs + 1))
        [ "$rc" -eq 0 ] && break
        # Keep only the first few logs of crashed runs.
        [ "$runs" -gt 5 ] && rm -f "$log"
    done
    elapsed=$((SECONDS - start))
    total_execs=$((total_execs + execs))

    # Merge: the committed corpus becomes a minimal set of inputs covering
    # every edge that it and the scratch corpus reach (set cover over edge
    # coverage, ignoring hit counts, keeps it to tens of files per target).
    rm -rf "$work/merged"
    mkdir -p "$work/merged"
    if LUIGI_FUZZ_TARGET=$t SWIFT_BACKTRACE=enable=no "$bin" -merge=1 -set_cover_merge=1 -use_counters=0 \
        "$work/merged" "$repo/fuzz/corpus/$t" "$work/corpus" >"$work/merge.log" 2>&1 \
        && [ -n "$(ls -A "$work/merged")" ]; then
        find "$repo/fuzz/corpus/$t" -type f -delete
        cp "$work/merged/." "$repo/fuzz/corpus/$t/" -r
    else
        echo "warning: merge for $t failed (see $work/merge.log); fuzz/corpus/$t left as it was"
    fi

    # Triage crashes: one input (the smallest) per trapping file:line.
    declare -A seen=()
    for f in "$repo/fuzz/crashes/$t"/crash-*; do
        [ -e "$f" ] || continue
        seen[$(triage "$t" "$f" | cut -f1)]=1
    done
    crash_files=0
    new=()
    while read -r f; do
        [ -n "$f" ] || continue
        crash_files=$((crash_files + 1))
        line=$(triage "$t" "$f")
        key=${line%%$'\t'*}
        echo "$(basename "$f") $(stat -c %s "$f")B $line" >>"$work/triage.txt"
        if [ -z "${seen[$key]:-}" ] && [ "$key" != none ]; then
            seen[$key]=1
            cp "$f" "$repo/fuzz/crashes/$t/"
            new+=("$key (${line#*$'\t'})")
        fi
    done < <(ls -S -r "$work/artifacts"/crash-* 2>/dev/null)
    unset seen

    rate=$((execs / (elapsed > 0 ? elapsed : 1)))
    corpus_files=$(find "$repo/fuzz/corpus/$t" -type f | wc -l)
    corpus_bytes=$(find "$repo/fuzz/corpus/$t" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
    line="$t: $execs execs in ${elapsed}s ($rate/s), $runs run(s), $crash_files crash input(s), ${#new[@]} new distinct; corpus $corpus_files files / $corpus_bytes bytes"
    summary+=("$line")
    echo "$line"
    for k in "${new[@]}"; do echo "    new crash: $k"; summary+=("    new crash: $k"); done
done

echo
echo "== fuzz summary (total $total_execs executions)"
printf '%s\n' "${summary[@]}"
