#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs the
# format check, clippy, the Rust tests and the schema check. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clutch-target}"
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }

need_apt=()
command -v git >/dev/null || need_apt+=(git)
command -v ssh-keygen >/dev/null || need_apt+=(openssh-client)
command -v python3 >/dev/null || need_apt+=(python3)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v age >/dev/null || need_apt+=(age)
command -v man >/dev/null || need_apt+=(man-db)
if ((${#need_apt[@]})); then
    step "installing ${need_apt[*]}"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

step "python packages for the tests (tests/requirements.txt)"
python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt

step "installing the agent CLIs (claude, codex) for the runtime tests"
bash tests/agents/install.sh

rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings

log="$(mktemp)"
leaks="$(mktemp)"  # the harness appends a line per test world it scanned for secrets
cleanup() { local rc=$?; rm -f "$log" "$leaks"; stop_docker || rc=1; exit "$rc"; }  # a container left behind fails the suite
trap cleanup EXIT

step "a Docker engine of the suite's own (tests/docker/start.sh)"
# shellcheck source=tests/docker/start.sh
source tests/docker/start.sh

step "cargo test"
CLUTCH_TEST_SCAN_REPORT="$leaks" cargo test --locked 2>&1 | tee "$log"

step "no secret value of the tests in their output, repositories or clutch homes"
python3 tests/scan_secrets.py "$log" "$leaks" | tee -a "$log"

step "fixtures against schemas/ (python jsonschema)"
python3 tests/check_fixtures.py | tee -a "$log"

# One closing line for the whole suite: every runner's counts added up.
passed=$(grep -oE '[0-9]+ passed' "$log" | awk '{ s += $1 } END { print s + 0 }')
failed=$(grep -oE '[0-9]+ failed' "$log" | awk '{ s += $1 } END { print s + 0 }')
step "all tests passed"
echo "${passed:-0} passed, ${failed:-0} failed"
