#!/usr/bin/env bash
# What running a program under clutch's keeper costs, on this machine: `test run -- true`
# (one keeper, one program, one TEST_RUN event) and a whole `demo`, for this build and,
# with BASELINE=path/to/older/git-clutch, for another binary in the same run, interleaved
# so that the host's drift hits both alike.
#
#   benches/keeper.sh [N]          N (runs per command) defaults to 30; demos run N/4 times
#
# Prints a markdown table of the median wall time per command and binary.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clutch-target}"
N="${1:-30}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cargo build --release --quiet
cp "$CARGO_TARGET_DIR/release/git-clutch" "$WORK/git-clutch-this"
BINARIES=(this)
if [ -n "${BASELINE:-}" ]; then
    cp "$BASELINE" "$WORK/git-clutch-baseline"
    BINARIES+=(baseline)
fi

export CLUTCH_HOME="$WORK/home"
git init -q "$WORK/repo"
git -C "$WORK/repo" -c user.name=b -c user.email=b@example.com commit -q --allow-empty -m init
(cd "$WORK/repo" && "$WORK/git-clutch-this" init --name bench --founder ceo >/dev/null 2>&1)

# One timing (ms, integer µs precision) of CMD… in DIR.
once_us() {
    local dir=$1 start end
    shift
    start=$(date +%s%N)
    (cd "$dir" && "$@" >/dev/null 2>&1 </dev/null)
    end=$(date +%s%N)
    echo $(((end - start) / 1000))
}

median() { sort -n | awk '{ a[NR] = $1 } END { printf "%.1f", a[int((NR + 1) / 2)] / 1000 }'; }

declare -A test_runs demos
for _ in $(seq "$N"); do
    for b in "${BINARIES[@]}"; do
        test_runs[$b]+="$(once_us "$WORK/repo" "$WORK/git-clutch-$b" test run -- true) "
    done
done
for _ in $(seq $(((N + 3) / 4))); do
    for b in "${BINARIES[@]}"; do
        rm -rf "$WORK/demo-$b"
        demos[$b]+="$(once_us "$WORK" "$WORK/git-clutch-$b" demo "$WORK/demo-$b") "
    done
done

header="| command (median ms) |"
for b in "${BINARIES[@]}"; do header+=" $b |"; done
echo "$header"
echo "|---|$(printf -- '---:|%.0s' "${BINARIES[@]}")"
row() {
    local name=$1 line="| $1 |"
    local -n samples=$2
    for b in "${BINARIES[@]}"; do line+=" $(tr ' ' '\n' <<<"${samples[$b]}" | grep . | median) |"; done
    echo "$line"
}
row "test run -- true ($N runs)" test_runs
row "demo ($(((N + 3) / 4)) runs)" demos
