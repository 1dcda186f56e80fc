#!/usr/bin/env bash
# Measure Clutch: the in-process harness (benches/log.rs) and whole-process timings of the CLI,
# beside a raw-git baseline, in one run on this machine. Prints a markdown report; with
# --write it also replaces the measured part of docs/PERFORMANCE.md (between the
# `<!-- bench:begin -->` and `<!-- bench:end -->` markers; the rest of the page is kept).
#
#   benches/run.sh [--write] [--reuse] [SIZE…]        sizes default to 1000 10000 100000
#
# --reuse skips the harness when DIR/results.json exists and measures the CLI on the orgs it
# built before. Each measured block first waits (up to QUIET_WAIT seconds, default 120) for
# the other processes on the machine to leave the CPU at most 10 % busy, and the report says
# how busy it was: on 2 cores a concurrent build doubles every figure.
#
# Environment: CARGO_TARGET_DIR (default ~/.cache/clutch-target), CLUTCH_BENCH_DIR (where the
# orgs are built, default $CARGO_TARGET_DIR/clutch-bench), RUNS (hyperfine runs of the fast
# commands, default 30), SLOW_RUNS (runs of `verify`, default 5), RAW_EVENTS (raw-git baseline
# events, default 200), CLUTCH_COMMIT (the label of the measured source, default `git describe`),
# SETTLE (seconds to wait between the harness and the CLI timings, default 120).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clutch-target}"
export CARGO_TERM_COLOR=never
OUT="${CLUTCH_BENCH_DIR:-$CARGO_TARGET_DIR/clutch-bench}"
RUNS="${RUNS:-30}"
SLOW_RUNS="${SLOW_RUNS:-5}"
RAW_EVENTS="${RAW_EVENTS:-200}"

QUIET_WAIT="${QUIET_WAIT:-120}"
SETTLE="${SETTLE:-120}"
WRITE=0
REUSE=0
SIZES=()
for arg in "$@"; do
    case "$arg" in
        --write) WRITE=1 ;;
        --reuse) REUSE=1 ;;
        -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
        *) SIZES+=("$arg") ;;
    esac
done
((${#SIZES[@]})) || SIZES=(1000 10000 100000)

step() { printf '\n==> %s\n' "$*" >&2; }

# CPU busy, in % of all cores, over one second (from /proc/stat).
busy_pct() {
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); busy = y[1] - x[1]; idle = y[2] - x[2]
        pct = (busy + idle > 0) ? 100 * busy / (busy + idle) : 0; printf "%d", pct }'
}
# Wait until the machine is quiet; note how busy it was in QUIET_LOG.
QUIET_LOG=()
wait_quiet() { # label
    local pct waited=0
    pct=$(busy_pct)
    while ((pct > 10 && waited < QUIET_WAIT)); do
        pct=$(busy_pct)
        waited=$((waited + 1))
    done
    QUIET_LOG+=("$1: ${pct}% busy after ${waited} s of waiting (load average $(cut -d' ' -f1-3 /proc/loadavg))")
    echo "machine ${pct}% busy before: $1" >&2
}

# --- tools ----------------------------------------------------------------------------------
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /usr/bin/time ] || need+=(time)
command -v jq >/dev/null || need+=(jq)
if ((${#need[@]})); then
    step "installing ${need[*]}"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- build once, release --------------------------------------------------------------------
step "cargo build --release; cargo bench --no-run"
cargo build --release --bin git-clutch
cargo bench --bench log --no-run
# A private copy: the target directory is shared, and another checkout's build replaces
# release/git-clutch (cargo gives every checkout of this package the same artifact names).
mkdir -p "$OUT/bin"
cp "$CARGO_TARGET_DIR/release/git-clutch" "$OUT/bin/git-clutch.new"
mv "$OUT/bin/git-clutch.new" "$OUT/bin/git-clutch"
BIN="$OUT/bin/git-clutch"

# --- in-process harness ---------------------------------------------------------------------
mkdir -p "$OUT"
if ((REUSE)) && [ -f "$OUT/results.json" ]; then
    step "harness: reusing $OUT/results.json"
    harness_secs=$(cat "$OUT/harness.secs" 2>/dev/null || echo "?")
else
    wait_quiet "harness"
    step "harness: cargo bench --bench log -- --dir $OUT ${SIZES[*]}"
    harness_start=$(date +%s)
    cargo bench --bench log -- --dir "$OUT" "${SIZES[@]}" | tee "$OUT/harness.out" >&2
    harness_secs=$(($(date +%s) - harness_start))
    echo "$harness_secs" >"$OUT/harness.secs"
fi

# The harness created and deleted hundreds of thousands of loose objects (`git gc` prunes
# them). For 60 s after a delete (300 s while the inode table is dirty) ext4 skips those inodes
# when it allocates new ones, which made every file a `task new` creates slower: 13 ms instead of
# 4 ms on the 1k org. Let the file system settle before timing the CLI.
if ! ((REUSE)) || [ -n "${harness_start:-}" ]; then
    sync
    step "letting the file system settle for ${SETTLE}s"
    sleep "$SETTLE"
fi

# `git clutch` finds the binary on PATH, as it would for a user.
export PATH="$OUT/bin:$PATH"

# --- whole-process timings ------------------------------------------------------------------
# hyperfine: mean/median/min/stddev in ms of one command, run in a directory.
hf() { # name dir runs warmup command…
    local name=$1 dir=$2 runs=$3 warmup=$4
    shift 4
    (cd "$dir" && hyperfine -N --style basic --warmup "$warmup" --runs "$runs" --export-json "$OUT/hf-$name.json" "$@" >&2)
}
stat_ms() { # json field (mean|median|min|max|stddev)
    jq -r ".results[0].$2 * 1000 | . * 100 | round / 100" "$OUT/hf-$1.json"
}
peak_mib() { # dir command… : peak RSS of one run, MiB
    local dir=$1
    shift
    (cd "$dir" && /usr/bin/time -f '%M' -o "$OUT/time.out" "$@" >/dev/null 2>&1) || true
    awk '{ printf "%.1f", $1 / 1024 }' "$OUT/time.out"
}

ROWS=()
for size in "${SIZES[@]}"; do
    org="$OUT/org-$size"
    [ -d "$org/repo" ] || continue
    # Writes go to a copy, so the harness's org stays exactly N events.
    scratch="$OUT/cli-$size"
    rm -rf "$scratch"
    cp -a "$org" "$scratch"
    export CLUTCH_HOME="$scratch/home"
    repo="$scratch/repo"
    wait_quiet "CLI on $size events"
    step "CLI on $size events"
    (cd "$repo" && git clutch task list --json >/dev/null) # the cache is at the head (a no-op if so)
    hf "new-$size" "$repo" "$RUNS" 3 -n "git clutch task new" "git clutch task new 'Bench task from the CLI' --project core --as lead"
    hf "new-direct-$size" "$repo" "$RUNS" 3 -n "git-clutch task new" "git-clutch task new 'Bench task from the CLI' --project core --as lead"
    hf "list-$size" "$repo" "$RUNS" 3 -n "git clutch task list --json" "git clutch task list --json"
    hf "state-$size" "$repo" "$RUNS" 3 -n "git clutch state" "git clutch state"
    # verify replays from the root and ignores the cache: the same on every run.
    hf "verify-$size" "$repo" "$SLOW_RUNS" 1 -n "git clutch verify" "git clutch verify"
    rss_new=$(peak_mib "$repo" git-clutch task new 'Bench task for memory' --project core --as lead)
    rss_list=$(peak_mib "$repo" git-clutch task list --json)
    rss_verify=$(peak_mib "$repo" git-clutch verify)
    # One verify with the page cache dropped too (needs root; skipped otherwise).
    disk_cold="n/a"
    if [ -w /proc/sys/vm/drop_caches ]; then
        sync
        echo 3 >/proc/sys/vm/drop_caches
        t0=$(date +%s%N)
        (cd "$repo" && git-clutch verify >/dev/null)
        disk_cold=$(awk -v ns=$(($(date +%s%N) - t0)) 'BEGIN { printf "%.1f", ns / 1e6 }')
    fi
    events=$(jq -r ".[] | select(.events == $size) | .events" "$OUT/results.json")
    verify_mean=$(stat_ms "verify-$size" mean)
    ROWS+=("$size|$(stat_ms "new-$size" mean)|$(stat_ms "new-$size" median)|$(stat_ms "new-$size" min)|$(stat_ms "new-direct-$size" median)|$(stat_ms "list-$size" mean)|$(stat_ms "list-$size" median)|$(stat_ms "state-$size" median)|$verify_mean|$(awk -v n="$events" -v ms="$verify_mean" 'BEGIN { printf "%.0f", n / (ms / 1000) }')|$disk_cold|$rss_new|$rss_list|$rss_verify")
    echo "${ROWS[-1]}" >&2
done
wait_quiet "process floor"
step "process startup floor"
hf "version" "$OUT" "$RUNS" 3 -n "git-clutch --version" "git-clutch --version"
hf "git-version" "$OUT" "$RUNS" 3 -n "git clutch --version" "git clutch --version"

# --- raw-git baseline -----------------------------------------------------------------------
# What an event costs when a shell writes it with plain git plumbing: hash-object + mktree +
# commit-tree + update-ref (with the old value, so it is a compare-and-swap too), unsigned;
# then the same with `commit-tree -S` (git signs through ssh-keygen).
wait_quiet "raw-git baseline"
step "raw-git baseline: $RAW_EVENTS events"
raw="$OUT/raw-git"
rm -rf "$raw"
git init -q "$raw"
template_org="$OUT/org-${SIZES[0]}/repo"
template=$(git -C "$template_org" cat-file blob refs/clutch/log:event.json 2>/dev/null || echo '{"schema":1}')
key=$(find "$OUT/org-${SIZES[0]}/home/keys" -name 'lead-*' ! -name '*.pub' | head -1)
raw_run() { # count sign(0|1) → ms per event
    local count=$1 sign=$2 parent="" blob tree commit i
    local sign_args=()
    ((sign)) && sign_args=(-c gpg.format=ssh -c "user.signingKey=$key")
    local t0
    t0=$(date +%s%N)
    for ((i = 1; i <= count; i++)); do
        blob=$(printf '%s\n' "${template/\"clock\": /\"clock\": $i$sign}" | git -C "$raw" hash-object -w --stdin)
        tree=$(printf '100644 blob %s\tevent.json\n' "$blob" | git -C "$raw" mktree)
        if ((sign)); then
            commit=$(GIT_AUTHOR_NAME=lead GIT_AUTHOR_EMAIL=lead@clutch.invalid GIT_COMMITTER_NAME=lead GIT_COMMITTER_EMAIL=lead@clutch.invalid \
                git -C "$raw" "${sign_args[@]}" commit-tree -S ${parent:+-p "$parent"} -m "TASK_CREATED: raw $i" "$tree")
        else
            commit=$(GIT_AUTHOR_NAME=lead GIT_AUTHOR_EMAIL=lead@clutch.invalid GIT_COMMITTER_NAME=lead GIT_COMMITTER_EMAIL=lead@clutch.invalid \
                git -C "$raw" commit-tree ${parent:+-p "$parent"} -m "TASK_CREATED: raw $i" "$tree")
        fi
        if [ -n "$parent" ]; then
            git -C "$raw" update-ref "refs/raw/log$sign" "$commit" "$parent"
        else
            git -C "$raw" update-ref "refs/raw/log$sign" "$commit" ""
        fi
        parent=$commit
    done
    awk -v ns=$(($(date +%s%N) - t0)) -v n="$count" 'BEGIN { printf "%.2f", ns / n / 1e6 }'
}
raw_ms=$(raw_run "$RAW_EVENTS" 0)
raw_signed_ms="n/a"
if [ -n "$key" ] && command -v ssh-keygen >/dev/null; then
    raw_signed_ms=$(raw_run $((RAW_EVENTS / 4)) 1)
fi
echo "raw git: $raw_ms ms/event unsigned, $raw_signed_ms ms/event signed" >&2

# --- report ---------------------------------------------------------------------------------
cpu=$(lscpu | awk -F: '/Model name/ { gsub(/^ +/, "", $2); print $2; exit }')
mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
disk=$(df -h "$OUT" | awk 'NR == 2 { print $1 " (" $2 ")" }')
commit=${CLUTCH_COMMIT:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)}
largest=${SIZES[-1]}
has() { [ -f "$OUT/hf-$1.json" ]; }
verdict() { awk -v x="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == "<") ? (x < t) : (x > t); print (ok ? "**met**" : "**missed**") }'; }

report="$OUT/report.md"
{
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`benches/run.sh\` (the harness took ${harness_secs} s)."
    echo
    echo "| machine | |"
    echo "|---|---|"
    echo "| cores (\`nproc\`) | $(nproc) |"
    echo "| CPU | $cpu |"
    echo "| memory | $mem |"
    echo "| disk | $disk |"
    echo "| kernel | $(uname -sr) |"
    echo "| git | $(git --version | awk '{ print $3 }') |"
    echo "| rustc | $(rustc --version | awk '{ print $2 }') |"
    echo "| hyperfine | $(hyperfine --version | awk '{ print $2 }') |"
    echo "| clutch | \`$commit\` |"
    echo
    echo "Other load on the machine just before each measured block:"
    echo
    for line in "${QUIET_LOG[@]}"; do echo "- $line"; done
    echo
    echo "### Targets"
    echo
    echo "| target | measured | |"
    echo "|---|---|---|"
    if has new-10000; then
        m=$(stat_ms new-10000 mean)
        echo "| a CLI write under 5 ms (\`git clutch task new\`, 10k-event log) | $m ms mean, $(stat_ms new-10000 median) ms median | $(verdict "$m" 5 "<") |"
    fi
    cold=$(jq -r ".[] | select(.events == $largest) | .cold_replay.events_per_s | round" "$OUT/results.json")
    echo "| cold verified replay above 50k events/s (\`replay::load_cold\`, ${largest} events, packed) | $cold events/s | $(verdict "$cold" 50000 ">") |"
    if has "verify-$largest"; then
        v=$(stat_ms "verify-$largest" mean)
        vr=$(awk -v n="$largest" -v ms="$v" 'BEGIN { printf "%.0f", n / (ms / 1000) }')
        echo "| … as a whole process (\`git clutch verify\`, ${largest} events) | $v ms = $vr events/s | $(verdict "$vr" 50000 ">") |"
    fi
    if has list-100000; then
        m=$(stat_ms list-100000 mean)
        echo "| a warm read of a 100k-event org under 20 ms (\`git clutch task list --json\`) | $m ms mean, $(stat_ms list-100000 median) ms median | $(verdict "$m" 20 "<") |"
    fi
    echo
    echo "### Whole process (hyperfine, ms; \`--warmup 3 --runs $RUNS\`, verify \`--runs $SLOW_RUNS\`)"
    echo
    echo "Each command runs in a copy of the org built by the harness. \`task new\` appends an event on"
    echo "every run (so the log grows by the run count); \`task list --json\` and \`state\` read the cache"
    echo "at the head; \`verify\` replays from the root and ignores the cache (the page cache is warm,"
    echo "except in the \"page cache dropped\" column: one run after \`echo 3 > /proc/sys/vm/drop_caches\`)."
    echo
    echo "| events | \`git clutch task new\` mean | median | min | \`git-clutch task new\` (no git dispatch) median | \`task list --json\` mean | median | \`state\` median | \`verify\` mean | \`verify\` events/s | \`verify\`, page cache dropped | peak RSS \`task new\` (MiB) | peak RSS \`task list --json\` (MiB) | peak RSS \`verify\` (MiB) |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for row in "${ROWS[@]}"; do echo "| ${row//|/ | } |"; done
    echo
    echo "Process floor: \`git-clutch --version\` $(stat_ms version median) ms median; through git's dispatch (\`git clutch --version\`) $(stat_ms git-version median) ms."
    echo
    echo "### Raw-git baseline (same run)"
    echo
    echo "One event written by plain git plumbing from a shell, per event: \`git hash-object -w --stdin\` +"
    echo "\`git mktree\` + \`git commit-tree\` + \`git update-ref <new> <old>\` (4 processes), over $RAW_EVENTS events:"
    echo "**$raw_ms ms/event** unsigned. With \`commit-tree -S\` (\`gpg.format=ssh\`, git runs \`ssh-keygen -Y sign\`),"
    echo "over $((RAW_EVENTS / 4)) events: **$raw_signed_ms ms/event**."
    echo
    echo "### In-process harness (\`cargo bench --bench log\`)"
    echo
    echo "Cold replay is the median of 3 runs of \`replay::load_cold\` on the packed log (no state cache;"
    echo "the page cache is warm). The \"…\" rows under it time each step of a replay on one thread, one"
    echo "event at a time (CPU seconds for the whole log), to show where the time goes. Signatures are"
    echo "checked one by one and strictly (batch verification was dropped: it can accept what a strict check refuses)."
    echo "Peak RSS there is the harness process (which also holds the built state), not a CLI."
    echo
    cat "$OUT/harness.md"
} >"$report"

cat "$report"
if ((WRITE)); then
    doc="$ROOT/docs/PERFORMANCE.md"
    if [ ! -f "$doc" ] || ! grep -q '<!-- bench:begin -->' "$doc"; then
        mkdir -p "$(dirname "$doc")"
        printf '# Performance\n\n<!-- bench:begin -->\n<!-- bench:end -->\n' >"$doc"
    fi
    awk -v report="$report" '
        /<!-- bench:begin -->/ { print; while ((getline line < report) > 0) print line; skip = 1; next }
        /<!-- bench:end -->/ { skip = 0 }
        !skip { print }
    ' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
    step "wrote $doc"
fi
