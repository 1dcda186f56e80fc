#!/usr/bin/env bash
# Proves that the real `claude` and `codex` CLIs run offline against tests/agents/model_server.py
# (a scripted model on 127.0.0.1 speaking the Anthropic Messages and OpenAI Responses wire
# protocols), each in a temporary git repository, and that what they print is what
# docs/agents-wire.md says: the file the model asked for is written, and the usage and cost they
# report match the tokens the server served.
#
# Usage: tests/agents/prove.sh [claude] [codex] [failures]      (default: all three)
#   claude    claude -p … --output-format stream-json: file written, result line, cost
#   codex     codex exec --json with the workspace-write sandbox: file written, usage
#   failures  the failure behaviours: API error, max turns, permission denial, budget,
#             read-only sandbox
# CLUTCH_KEEP=1 keeps the temporary directory (its path is printed).
# Ends with "N passed, 0 failed"; exits non-zero on the first failed check.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
parts=("$@")
((${#parts[@]})) || parts=(claude codex failures)

eval "$("$here/install.sh" | sed -n 's/^\(claude\|codex\)=/bin_\1=/p')"
[ -n "${bin_claude:-}" ] && [ -n "${bin_codex:-}" ] || { echo "install.sh printed no paths" >&2; exit 1; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/clutch-agents.XXXXXX")"
server_pids=()
cleanup() {
    for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ "${CLUTCH_KEEP:-}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

passed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
fail() { echo "FAILED - $*" >&2; echo "$passed passed, 1 failed"; exit 1; }

CLAUDE_MODEL=claude-sonnet-4-5-20250929
CODEX_MODEL=gpt-5.5
SESSION_ID=0b9e7f64-3c1d-4a52-9e8b-6f1d2c3a4b5c
RUN_TIMEOUT=120

# A usage script with every kind of token, so the cost formula is exercised in full.
cat >"$tmp/script.json" <<'EOF'
{
  "file": "hello.txt",
  "content": "hello from the model server\n",
  "final": "Done: hello.txt is written.",
  "usage": {
    "tool":  {"input_tokens": 1000, "output_tokens": 50, "cache_read": 2000, "cache_write": 500},
    "final": {"input_tokens": 1200, "output_tokens": 20, "cache_read": 3000, "cache_write": 0}
  }
}
EOF

# start_server NAME [VAR=VALUE...]: a model server logging to $tmp/NAME/logs; sets $port.
start_server() {
    local name="$1"; shift
    mkdir -p "$tmp/$name/logs" "$tmp/$name/repo" "$tmp/$name/home"
    git -C "$tmp/$name/repo" init -q
    env CLUTCH_MS_SCRIPT="$tmp/script.json" CLUTCH_MS_LOG_DIR="$tmp/$name/logs" CLUTCH_MS_IDLE_S=60 \
        CLUTCH_MS_MAX_S=300 "$@" python3 "$here/model_server.py" 0 >"$tmp/$name/port" 2>"$tmp/$name/server.err" </dev/null &
    server_pids+=($!)
    for _ in $(seq 100); do
        [ -s "$tmp/$name/port" ] && break
        sleep 0.1
    done
    port="$(head -1 "$tmp/$name/port")"
    [ -n "$port" ] || fail "$name: the model server did not start: $(cat "$tmp/$name/server.err")"
}

stop_server() { # the last one started
    local pid="${server_pids[-1]}"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# run_claude NAME ALLOWED_TOOLS MAX_TURNS [more claude args...]: rc in $rc, output in NAME/out.jsonl
run_claude() {
    local name="$1" allowed="$2" turns="$3"; shift 3
    local dir="$tmp/$name"
    set +e
    (cd "${RUN_CWD:-$dir/repo}" && env -i PATH="$PATH" LANG=C.UTF-8 HOME="$dir/home" \
        ANTHROPIC_BASE_URL="http://127.0.0.1:$port" ANTHROPIC_API_KEY=sk-ant-test-dummy \
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1 \
        DISABLE_ERROR_REPORTING=1 CLAUDE_CODE_MAX_RETRIES=1 \
        timeout -k 5 "$RUN_TIMEOUT" "$bin_claude" -p "Write hello.txt with a greeting." \
        --output-format stream-json --verbose --allowedTools "$allowed" --max-turns "$turns" \
        --model "$CLAUDE_MODEL" --session-id "$SESSION_ID" "$@" \
        >"$dir/out.jsonl" 2>"$dir/err.txt" </dev/null)
    rc=$?
    set -e
}

# run_codex NAME SANDBOX_ARGS...: rc in $rc, output in NAME/out.jsonl
run_codex() {
    local name="$1"; shift
    local dir="$tmp/$name"
    mkdir -p "$dir/home/.codex"
    set +e
    (cd "${RUN_CWD:-$dir/repo}" && env -i PATH="$PATH" LANG=C.UTF-8 HOME="$dir/home" CODEX_HOME="$dir/home/.codex" \
        CLUTCH_MODEL_KEY=sk-test-dummy \
        timeout -k 5 "$RUN_TIMEOUT" "$bin_codex" exec --json "$@" --ephemeral \
        -c "model_providers.local={name=\"local\",base_url=\"http://127.0.0.1:$port/v1\",wire_api=\"responses\",env_key=\"CLUTCH_MODEL_KEY\",request_max_retries=0,stream_max_retries=0}" \
        -c model_provider=local -m "$CODEX_MODEL" \
        -c analytics.enabled=false -c check_for_update_on_startup=false --disable plugins \
        "Write hello.txt with a greeting." \
        >"$dir/out.jsonl" 2>"$dir/err.txt" </dev/null)
    rc=$?
    set -e
}

# check NAME PYTHON: runs PYTHON with `out` (the JSON lines), `served` (usage.json), `reqs`
# (the logged requests), `repo`, `rc`; an AssertionError fails the check.
check() {
    local name="$1" code="$2"
    python3 - "$tmp/$name" "$rc" <<EOF || fail "$name (rc=$rc; stderr: $(head -c 400 "$tmp/$name/err.txt"))"
import glob, json, os, sys
d, rc = sys.argv[1], int(sys.argv[2])
repo = os.path.join(d, "repo")
out = [json.loads(l) for l in open(os.path.join(d, "out.jsonl")) if l.strip().startswith("{")]
served = json.load(open(os.path.join(d, "logs", "usage.json")))
reqs = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(d, "logs", "0*.json")))]
def read(p):
    p = os.path.join(repo, p)
    return open(p).read() if os.path.exists(p) else None
$code
EOF
}

if [[ " ${parts[*]} " == *" claude "* ]]; then
    "$bin_claude" --version | grep -q '(Claude Code)' && ok "claude $("$bin_claude" --version)"
    start_server claude
    run_claude claude Write 3
    stop_server
    check claude '
assert rc == 0, rc
assert read("hello.txt") == "hello from the model server\n", read("hello.txt")
kinds = [(o["type"], o.get("subtype")) for o in out]
assert kinds[0] == ("system", "init"), kinds
assert ("user", None) in kinds and kinds[-1] == ("result", "success"), kinds
r = out[-1]
assert r["is_error"] is False and r["permission_denials"] == [], r
assert r["session_id"] == "'"$SESSION_ID"'", r["session_id"]
assert r["result"] == "Done: hello.txt is written.", r["result"]
a = served["anthropic"]
assert a["requests"] == 2, a
u = r["usage"]
assert (u["input_tokens"], u["output_tokens"], u["cache_read_input_tokens"], u["cache_creation_input_tokens"]) == \
       (a["input_tokens"], a["output_tokens"], a["cache_read_input_tokens"], a["cache_creation_input_tokens"]), (u, a)
# claude prices claude-sonnet-4-5 at $3 / $15 / $0.30 / $3.75 per million input / output /
# cache-read / cache-write tokens.
want = (a["input_tokens"] * 3 + a["output_tokens"] * 15 + a["cache_read_input_tokens"] * 0.30
        + a["cache_creation_input_tokens"] * 3.75) / 1e6
assert abs(r["total_cost_usd"] - want) < 1e-9, (r["total_cost_usd"], want)
mu = r["modelUsage"]["'"$CLAUDE_MODEL"'"]
assert abs(mu["costUSD"] - want) < 1e-9 and mu["inputTokens"] == a["input_tokens"], mu
body = reqs[0]["body"]
assert reqs[0]["path"].startswith("/v1/messages") and body["stream"] is True and body["model"] == "'"$CLAUDE_MODEL"'"
assert "Write" in [t["name"] for t in body["tools"]]
assert reqs[0]["headers"].get("x-api-key") == "<redacted>"
tool = reqs[1]["body"]["messages"][-1]["content"][0]
assert tool["type"] == "tool_result" and not tool.get("is_error"), tool
'
    ok "claude -p stream-json: Write ran, result success, usage = served, total_cost_usd = $(tail -1 "$tmp/claude/out.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_cost_usd"])')"
fi

if [[ " ${parts[*]} " == *" codex "* ]]; then
    "$bin_codex" --version 2>/dev/null | grep -q '^codex-cli ' && ok "$("$bin_codex" --version 2>/dev/null)"
    for tool in auto apply_patch; do
        name="codex-$tool"
        start_server "$name" CLUTCH_MS_CODEX_TOOL="$tool"
        run_codex "$name" -s workspace-write
        stop_server
        check "$name" '
assert rc == 0, rc
assert read("hello.txt") == "hello from the model server\n", read("hello.txt")
types = [o["type"] for o in out]
assert types[0] == "thread.started" and types[1] == "turn.started" and types[-1] == "turn.completed", types
items = [o["item"] for o in out if o["type"] == "item.completed"]
assert items[-1] == {"id": items[-1]["id"], "type": "agent_message", "text": "Done: hello.txt is written."}, items[-1]
work = items[-2]
if "'"$tool"'" == "apply_patch":
    assert work["type"] == "file_change" and work["status"] == "completed", work
    assert work["changes"] == [{"path": os.path.join(os.path.realpath(repo), "hello.txt"), "kind": "add"}], work
else:
    assert work["type"] == "command_execution" and work["exit_code"] == 0, work
u = out[-1]["usage"]
o = served["openai"]
assert o["requests"] == 2, o
assert u == {"input_tokens": o["input_tokens"], "cached_input_tokens": o["cached_tokens"],
             "cache_write_input_tokens": o["cache_write_tokens"], "output_tokens": o["output_tokens"],
             "reasoning_output_tokens": o["reasoning_tokens"]}, (u, o)
body = reqs[0]["body"]
assert reqs[0]["path"] == "/v1/responses" and body["stream"] is True and body["model"] == "'"$CODEX_MODEL"'"
assert reqs[0]["headers"].get("authorization") == "<redacted>"
outs = [i for i in reqs[1]["body"]["input"] if i.get("type", "").endswith("_call_output")]
assert len(outs) == 1, outs
'
        ok "codex exec --json -s workspace-write ($tool tool): file written, turn.completed usage = served"
    done
fi

if [[ " ${parts[*]} " == *" failures "* ]]; then
    # An API error (400: not retried) - is_error true, subtype still "success", exit 1.
    start_server claude-400 CLUTCH_MS_MODE=error CLUTCH_MS_ERROR_STATUS=400
    run_claude claude-400 Write 3
    stop_server
    check claude-400 '
assert rc == 1, rc
r = out[-1]
assert r["type"] == "result" and r["is_error"] is True and r["subtype"] == "success", r
assert r["api_error_status"] == 400 and r["result"].startswith("API Error: 400"), r
assert r["total_cost_usd"] == 0 and read("hello.txt") is None
'
    ok "claude, server 400: exit 1, result is_error=true, api_error_status=400"

    # A 500 with CLAUDE_CODE_MAX_RETRIES=1: one system/api_retry line, then the same shape.
    start_server claude-500 CLUTCH_MS_MODE=error CLUTCH_MS_ERROR_STATUS=500
    run_claude claude-500 Write 3
    stop_server
    check claude-500 '
assert rc == 1, rc
retries = [o for o in out if o["type"] == "system" and o.get("subtype") == "api_retry"]
assert len(retries) == 1 and retries[0]["error_status"] == 500, retries
r = out[-1]
assert r["is_error"] is True and r["api_error_status"] == 500, r
'
    ok "claude, server 500: api_retry line, exit 1, api_error_status=500"

    # Max turns: the tool still runs, then error_max_turns, exit 1.
    start_server claude-turns CLUTCH_MS_MODE=loop
    run_claude claude-turns Write 1
    stop_server
    check claude-turns '
assert rc == 1, rc
r = out[-1]
assert r["subtype"] == "error_max_turns" and r["is_error"] is True, r
assert r["errors"] == ["Reached maximum number of turns (1)"], r["errors"]
assert r["total_cost_usd"] > 0 and read("hello.txt") is not None
'
    ok "claude, --max-turns 1 hit: exit 1, subtype error_max_turns (the file was written anyway)"

    # The tool is not allowed: denied, the model answers, and claude reports SUCCESS.
    start_server claude-denied
    run_claude claude-denied Read 3
    stop_server
    check claude-denied '
assert rc == 0, rc
r = out[-1]
assert r["subtype"] == "success" and r["is_error"] is False, r
d = r["permission_denials"]
assert len(d) == 1 and d[0]["tool_name"] == "Write" and d[0]["tool_input"]["file_path"].endswith("/hello.txt"), d
assert read("hello.txt") is None
tool = reqs[1]["body"]["messages"][-1]["content"][0]
assert tool["type"] == "tool_result" and tool["is_error"] is True, tool
'
    ok "claude, Write not in --allowedTools: exit 0, subtype success, permission_denials=[Write], no file"

    # The budget: stops after the first answer, before running its tool.
    start_server claude-budget
    run_claude claude-budget Write 3 --max-budget-usd 0.001
    stop_server
    check claude-budget '
assert rc == 1, rc
r = out[-1]
assert r["subtype"] == "error_max_budget_usd" and r["is_error"] is True, r
assert r["errors"] == ["Reached maximum budget ($0.001)"], r["errors"]
assert r["total_cost_usd"] > 0.001 and r["usage"]["input_tokens"] == 0, r
mu = r["modelUsage"]["'"$CLAUDE_MODEL"'"]
assert mu["inputTokens"] == 1000 and abs(mu["costUSD"] - r["total_cost_usd"]) < 1e-12, mu
assert read("hello.txt") is None
'
    ok "claude, --max-budget-usd exceeded: exit 1, error_max_budget_usd, usage zeroed but modelUsage right"

    # codex: an API error fails the turn.
    start_server codex-400 CLUTCH_MS_MODE=error CLUTCH_MS_ERROR_STATUS=400
    run_codex codex-400 -s workspace-write
    stop_server
    check codex-400 '
assert rc == 1, rc
types = [o["type"] for o in out]
assert types == ["thread.started", "turn.started", "error", "turn.failed"], types
assert "scripted error 400" in out[-1]["error"]["message"], out[-1]
'
    ok "codex, server 400: exit 1, error + turn.failed, no turn.completed"

    # codex read-only sandbox: the command fails inside the sandbox, the run still succeeds.
    start_server codex-ro
    run_codex codex-ro -s read-only
    stop_server
    check codex-ro '
assert rc == 0, rc
assert read("hello.txt") is None
assert out[-1]["type"] == "turn.completed"
outs = [i for i in reqs[1]["body"]["input"] if i.get("type", "").endswith("_call_output")]
assert "Read-only file system" in outs[0]["output"], outs
'
    ok "codex -s read-only: exit 0, turn.completed, the write failed (Read-only file system), no file"

    # A git worktree inside .git/ (where clutch keeps them today): claude refuses every write
    # there as "a sensitive file", whatever --allowedTools says; codex writes there fine.
    for cli in claude codex; do
        name="$cli-gitdir"
        start_server "$name"
        git -C "$tmp/$name/repo" -c user.name=t -c user.email=t@t.invalid commit -q --allow-empty -m init
        git -C "$tmp/$name/repo" worktree add -q -b clutch/agent/t1 .git/clutch/worktrees/t1
        if [ "$cli" = claude ]; then
            RUN_CWD="$tmp/$name/repo/.git/clutch/worktrees/t1" run_claude "$name" Write 3
        else
            RUN_CWD="$tmp/$name/repo/.git/clutch/worktrees/t1" run_codex "$name" -s workspace-write
        fi
        stop_server
        check "$name" '
assert rc == 0, rc
written = read(".git/clutch/worktrees/t1/hello.txt")
if "'"$cli"'" == "claude":
    r = out[-1]
    assert r["subtype"] == "success" and r["is_error"] is False, r
    assert [d["tool_name"] for d in r["permission_denials"]] == ["Write"], r["permission_denials"]
    tool = reqs[1]["body"]["messages"][-1]["content"][0]
    assert "which is a sensitive file" in tool["content"] and tool["is_error"] is True, tool
    assert written is None
else:
    assert out[-1]["type"] == "turn.completed" and written == "hello from the model server\n", written
'
    done
    ok "a worktree under .git/: claude denies Write (sensitive file), codex writes"
fi

echo "$passed passed, 0 failed"
