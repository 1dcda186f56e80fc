#!/usr/bin/env bash
# Installs the real agent CLIs the runtime tests drive: `claude` (npm @anthropic-ai/claude-code)
# and `codex` (npm @openai/codex), into a cache directory, and prints their paths:
#
#   claude=/root/.cache/clutch-npm/node_modules/.bin/claude
#   codex=/root/.cache/clutch-npm/node_modules/.bin/codex
#
# Usage: tests/agents/install.sh [CACHE_DIR]      (default $CLUTCH_NPM_CACHE or ~/.cache/clutch-npm)
#
# Idempotent: when both CLIs are already there at the pinned versions, it installs nothing.
# The versions are pinned (the wire formats in docs/agents-wire.md were recorded with them);
# override with CLUTCH_CLAUDE_VERSION / CLUTCH_CODEX_VERSION. Quiet on success; on failure it
# prints npm's output and exits non-zero.
set -euo pipefail

CLAUDE_VERSION="${CLUTCH_CLAUDE_VERSION:-2.1.331}"
CODEX_VERSION="${CLUTCH_CODEX_VERSION:-0.169.0}"
dir="${1:-${CLUTCH_NPM_CACHE:-$HOME/.cache/clutch-npm}}"

die() { echo "tests/agents/install.sh: $*" >&2; exit 1; }
command -v npm >/dev/null || die "npm is not installed (apt-get install npm)"

claude="$dir/node_modules/.bin/claude"
codex="$dir/node_modules/.bin/codex"

installed_version() { # package -> version in the cache, or nothing
    local pj="$dir/node_modules/$1/package.json"
    [ -f "$pj" ] && sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$pj" | head -1
}

if [ "$(installed_version @anthropic-ai/claude-code)" != "$CLAUDE_VERSION" ] \
    || [ "$(installed_version @openai/codex)" != "$CODEX_VERSION" ] \
    || [ ! -x "$claude" ] || [ ! -x "$codex" ]; then
    mkdir -p "$dir"
    [ -f "$dir/package.json" ] || echo '{"name":"clutch-agent-clis","private":true}' >"$dir/package.json"
    log="$(mktemp)"
    # The CLIs ship native binaries in per-platform optional dependencies: never --no-optional.
    if ! npm install --prefix "$dir" --no-audit --no-fund --no-update-notifier --loglevel=error \
        "@anthropic-ai/claude-code@$CLAUDE_VERSION" "@openai/codex@$CODEX_VERSION" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "npm install failed (into $dir)"
    fi
    rm -f "$log"
fi

# Prove they run (no network needed for --version).
for bin in "$claude" "$codex"; do
    [ -x "$bin" ] || die "$bin is missing after npm install"
    out="$(HOME="$dir/.probe-home" timeout 60 "$bin" --version 2>&1)" || { echo "$out" >&2; die "$bin --version failed"; }
done
rm -rf "$dir/.probe-home"

echo "claude=$claude"
echo "codex=$codex"
