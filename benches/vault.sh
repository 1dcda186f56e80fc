#!/usr/bin/env bash
# What the vault costs a command, on this machine: `task new` signed with a plain key file,
# with the key in a vault locked by an age identity, and by a passphrase (scrypt 2^16); and
# `secret set` / `secret list` themselves.
#
#   benches/vault.sh [N]          N (commands per row) defaults to 30
#
# Prints a markdown table of the median wall time per command.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clutch-target}"
N="${1:-30}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cargo build --release --quiet
B="$CARGO_TARGET_DIR/release/git-clutch"
command -v age-keygen >/dev/null || { echo "benches/vault.sh needs age-keygen (Debian package age)" >&2; exit 1; }

# median_ms CMD…: run CMD N times (output discarded), print the median wall time in ms.
median_ms() {
    local times=() start end
    for _ in $(seq "$N"); do
        start=$(date +%s%N)
        "$@" >/dev/null 2>&1 </dev/null
        end=$(date +%s%N)
        times+=($(((end - start) / 1000)))
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "%.2f", a[int((NR + 1) / 2)] / 1000 }'
}

# org DIR: a repository with an org founded by ceo and a senior, bob, in DIR (keys per env).
org() {
    git init -q -b main "$1"
    (cd "$1" && "$B" init --name bench --founder ceo >/dev/null 2>&1 && "$B" agent add bob --role senior >/dev/null)
}

age-keygen -o "$WORK/identity.txt" 2>/dev/null

export CLUTCH_HOME="$WORK/plain-home"
org "$WORK/plain"
plain=$(cd "$WORK/plain" && median_ms "$B" --as bob task new "a task")

export CLUTCH_HOME="$WORK/identity-home" CLUTCH_SECRET_KEY_FILE="$WORK/identity.txt"
org "$WORK/identity"
identity=$(cd "$WORK/identity" && median_ms "$B" --as bob task new "a task")
set_ms=$(median_ms sh -c "printf %s 'bench-value-0123456789' | '$B' secret set BENCH")
list_ms=$(median_ms "$B" secret list)
unset CLUTCH_SECRET_KEY_FILE

export CLUTCH_HOME="$WORK/pass-home" CLUTCH_SECRET_KEY="a bench passphrase, long enough"
org "$WORK/pass"
passphrase=$(cd "$WORK/pass" && median_ms "$B" --as bob task new "a task")
unset CLUTCH_SECRET_KEY

echo "| command ($N runs, median) | ms |"
echo "|---|---|"
echo "| \`task new\`, key in a plain file | $plain |"
echo "| \`task new\`, key in the vault (age identity) | $identity |"
echo "| \`task new\`, key in the vault (passphrase, scrypt 2^16) | $passphrase |"
echo "| \`secret set\` (identity; lock, decrypt, encrypt, fsync, rename) | $set_ms |"
echo "| \`secret list\` (identity) | $list_ms |"
