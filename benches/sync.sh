#!/usr/bin/env bash
# Measure `git clutch sync` moving N new events between two clones through a bare repository
# that runs clutch's pre-receive hook (which verifies every pushed event), on this machine.
#
#   benches/sync.sh [N]          N defaults to 10000
#
# The org is built in-process by the bench harness (benches/log.rs), then:
#   1. push:  clone A syncs its N events into an empty server (the hook verifies all of them);
#   2. clone: a fresh `git clone` of the server, then `git clutch sync` (fetch + full verify).
# Prints a markdown table of wall times and rates.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clutch-target}"
N="${1:-10000}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cargo build --release --quiet
cargo bench --bench log --no-run --quiet 2>/dev/null
BIN="$WORK/bin"
mkdir -p "$BIN"
cp "$CARGO_TARGET_DIR/release/git-clutch" "$BIN/git-clutch"
export PATH="$BIN:$PATH"
HARNESS=$(ls -t "$CARGO_TARGET_DIR"/release/deps/log-* | grep -v '\.d$' | head -1)

secs() { # command… → wall seconds
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}

echo "building an org of $N events…" >&2
"$HARNESS" --bench --dir "$WORK/org" --one-by-one 0 --runs 1 "$N" >/dev/null 2>&1
ORG=$(find "$WORK/org" -maxdepth 2 -type d -name repo | head -1)
export CLUTCH_HOME="$(dirname "$ORG")/home"

git init -q --bare "$WORK/server.git"
git-clutch hooks install --server "$WORK/server.git" >/dev/null
git -C "$ORG" remote add origin "$WORK/server.git"
git -C "$ORG" config gc.autoDetach false
EVENTS=$(git -C "$ORG" rev-list --count refs/clutch/log)

PUSH=$(cd "$ORG" && secs git-clutch sync)
git clone -q "$WORK/server.git" "$WORK/b" 2>/dev/null
CLONE=$(cd "$WORK/b" && secs git-clutch sync)

rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0) ? n / s : 0 }'; }
echo "| sync of $EVENTS events ($(nproc) cores, $(date -u +%Y-%m-%d)) | wall (s) | events/s |"
echo "|---|---:|---:|"
echo "| push into an empty server, hook verifying every event | $PUSH | $(rate "$EVENTS" "$PUSH") |"
echo "| fresh clone: \`git clone\` then \`git clutch sync\` (fetch, verify all) | $CLONE | $(rate "$EVENTS" "$CLONE") |"
