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
if [ -n "${BASELINE:-}" ]; then BASELINE="$(realpath "$BASELINE")"; fi
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
(cd "$WORK/repo" && "$WORK/git-clutch-this" init --name bench --founder ceo >/dev/null)

# One timing, in µs, of CMD… in DIR; a command that fails stops the bench (a fast failure
# is not a fast run).
once_us() {
    local dir=$1 start end
    shift
    start=$(date +%s%N)
    if ! (cd "$dir" && "$@" >/dev/null 2>"$WORK/stderr" </dev/null); then
        echo "benches/keeper.sh: '$*' failed:" >&2
        cat "$WORK/stderr" >&2
        exit 1
    fi
    end=$(date +%s%N)
    echo $(((end - start) / 1000))
}

# The median of µs samples on stdin, in ms.
median() { sort -n | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.1f", m / 1000 }'; }

# The binaries in turn, the first one alternating, so neither always runs right after the other.
order() {
    if (($1 % 2)); then printf '%s\n' "${BINARIES[@]}" | tac; else printf '%s\n' "${BINARIES[@]}"; fi
}

declare -A test_runs demos
for i in $(seq "$N"); do
    for b in $(order "$i"); do
        t=$(once_us "$WORK/repo" "$WORK/git-clutch-$b" test run -- true) || exit 1
        test_runs[$b]+="$t "
    done
done
for i in $(seq $(((N + 3) / 4))); do
    for b in $(order "$i"); do
        rm -rf "$WORK/demo-$b"
        t=$(once_us "$WORK" "$WORK/git-clutch-$b" demo "$WORK/demo-$b") || exit 1
        demos[$b]+="$t "
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
