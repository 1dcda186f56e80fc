#!/usr/bin/env bash
# A scripted tour of what Clutch does today, on a throwaway repository.
#
#   bash docs/tour.sh
#
# Builds the release binary (CARGO_TARGET_DIR, default ~/.cache/clutch-target), then works in a
# temporary directory with its own CLUTCH_HOME (so no key of yours is touched) and its own git
# config (so none of your git settings matter): founds an org, adds agents of every role, runs
# tasks with dependencies through their life, shows a refused action, verifies the log with
# clutch and with plain git, takes a pull request through review and the merge gate, shares
# the log through a bare repository with clutch's pre-receive hook (two clones that work apart
# and sync), and finally forges an unsigned event with plain git to show that replay rejects it
# and the server refuses it. Every command
# is printed before it runs. Exits non-zero if anything does not behave as shown, including a
# command that was supposed to fail but did not.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clutch-target}"

# ---------------------------------------------------------------------------------------------
# Printing helpers: each command is shown as "$ command" before it runs.

if [ -t 1 ]; then bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'; else bold="" dim="" off=""; fi

say() { printf '\n%s# %s%s\n' "$bold" "$*" "$off"; }

die() {
    printf '\ntour: FAILED: %s\n' "$*" >&2
    exit 1
}

# Quote an argument only when it needs it, so the printed line reads like what you would type.
quote() {
    case "$1" in
    "" | *[!A-Za-z0-9_./:=@%+,-]*) printf "'%s'" "${1//\'/\'\\\'\'}" ;;
    *) printf '%s' "$1" ;;
    esac
}

# --option=value and NAME=value keep the name outside the quotes.
show_arg() {
    if [[ "$1" =~ ^(--[a-z-]+=|[A-Z_]+=)(.*)$ ]]; then
        printf '%s' "${BASH_REMATCH[1]}"
        quote "${BASH_REMATCH[2]}"
    else
        quote "$1"
    fi
}

cmdline() {
    local first=1 arg
    for arg in "$@"; do
        if [ $first = 1 ]; then first=0; else printf ' '; fi
        show_arg "$arg"
    done
}

show() { printf '%s$ %s%s\n' "$dim" "$(cmdline "$@")" "$off"; }

# run CMD…: print, run, stop the tour if it fails.
run() {
    show "$@"
    "$@" || die "'$*' exited with $?"
}

# fails CODE CMD…: print, run, and require exactly exit code CODE.
fails() {
    local want=$1 rc=0
    shift
    show "$@"
    "$@" || rc=$?
    [ "$rc" = "$want" ] || die "'$*' should have exited with $want but exited with $rc"
    printf '%s(exit %s, as expected)%s\n' "$dim" "$rc" "$off"
}

# capture VAR CMD…: print as VAR=$(CMD…), run, keep its output in VAR and show it.
capture() {
    local var=$1 value
    shift
    printf '%s$ %s=$(%s)%s\n' "$dim" "$var" "$(cmdline "$@")" "$off"
    value="$("$@")" || die "'$*' failed"
    printf -v "$var" '%s' "$value"
    printf '%s\n' "$value"
}

# capture_sh VAR 'LINE': the same for a shell line with pipes.
capture_sh() {
    local var=$1 value
    printf '%s$ %s=$(%s)%s\n' "$dim" "$var" "$2" "$off"
    value="$(bash -c "$2")" || die "'$2' failed"
    printf -v "$var" '%s' "$value"
    printf '%s\n' "$value"
}

# shell 'LINE': print a shell line (pipes, redirections) and run it with bash.
shell() {
    printf '%s$ %s%s\n' "$dim" "$1" "$off"
    bash -c "$1" || die "'$1' exited with $?"
}

# ---------------------------------------------------------------------------------------------
say "Build the binary (release)"
command -v cargo >/dev/null || die "cargo not found: install Rust from https://rustup.rs and run this again"
command -v git >/dev/null || die "git not found: install git and run this again"
(cd "$repo_root" && run cargo build --release)
binary="$CARGO_TARGET_DIR/release/git-clutch"
[ -x "$binary" ] || die "no binary at $binary after the build"

work="$(mktemp -d "${TMPDIR:-/tmp}/clutch-tour.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
ln -s "$binary" "$work/bin/git-clutch" # `git clutch` runs the git-clutch found on PATH
export PATH="$work/bin:$PATH"
export CLUTCH_HOME="$work/clutch-home" # private keys of this tour's agents go here
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 # ignore your git settings
unset CLUTCH_ACTOR CLUTCH_NOW
cd "$work"
started=$SECONDS

say "A fresh git repository (nothing else is needed: no user.name, no signing setup)"
run git init -q demo
cd demo

say "Found the org: the genesis event ORG_CREATED, signed by the founder, who is its CEO"
capture ORG git clutch init --name 'Acme Robotics' --founder ada
run git config clutch.orgId # init pinned this clone to the org id (the genesis commit id)

say "Agents of every role; each gets an Ed25519 key pair, the private half under \$CLUTCH_HOME/keys/"
run git clutch agent add hana --role hr
run git clutch agent add sam --role senior
run git clutch agent add jo --role junior
run git clutch agent add kim --role junior
run git clutch agent list
run ls "$CLUTCH_HOME/keys"

say "A project and three tasks; 'Write the parser' waits for 'Write the tokenizer'"
run git clutch --as sam project new parser --description 'A parser for the config language'
capture T1 git clutch --as sam task new 'Write the tokenizer' --project parser
capture T2 git clutch --as sam task new 'Write the parser' --project parser --after "$T1"
capture T3 git clutch --as sam task new 'Document the grammar' --project parser
run git clutch task list
run git clutch task list --ready

say "A Junior may not create tasks: the reducer refuses before anything is written (exit 1)"
fails 1 git clutch --as jo task new 'Rewrite everything in Go'

say "Assign, claim (a second claim of the same task is a conflict, exit 3), start"
run git clutch --as sam task assign "$T1" jo
run git clutch --as kim task claim "$T3"
fails 3 git clutch --as jo task claim "$T3"
run git clutch --as jo task start "$T1"

say "An artifact: the file is stored in the event's own commit, under files/"
printf 'pub fn tokens(src: &str) -> Vec<&str> {\n    src.split_whitespace().collect()\n}\n' >"$work/tokenizer.rs"
run git clutch --as jo artifact add "$T1" "$work/tokenizer.rs" --kind patch
run git clutch --as jo task done "$T1"

say "The tokenizer is done, so the parser is ready now"
run git clutch task list --ready
run git clutch task show "$T1"

say "State is a replay of the log; log lists the events in replay order"
run git clutch state
run git clutch log
run git clutch verify

say "Audit with plain git: the roster as an allowed-signers file, then git checks the signatures"
shell 'git clutch signers > signers && cat signers'
if command -v ssh-keygen >/dev/null; then
    run git -c gpg.ssh.allowedSignersFile=signers verify-commit refs/clutch/log
else
    printf '(ssh-keygen not found, so git cannot check SSH signatures here: install openssh-client)\n'
fi
shell "git log --format='%h %s%n%(trailers)' refs/clutch/log | head -n 13"
run git show refs/clutch/log:event.json
run git log --oneline --grep='^Clutch-Actor: jo$' refs/clutch/log

say "Governance: kim opens a PR on a branch, sam requests changes, kim updates it, sam approves and merges"
kim_git=(git -c user.name=kim -c user.email=kim@example.com)
run git symbolic-ref HEAD refs/heads/main # a base branch for PRs (this repository has no commit yet)
run "${kim_git[@]}" commit -q --allow-empty -m 'Initial commit'
run git switch -q -c kim/grammar
printf 'expr := term (("+" | "-") term)*\n' >grammar.txt
run git add grammar.txt
run "${kim_git[@]}" commit -q -m 'Grammar: expressions'
capture PR git clutch --as kim pr open --task "$T3"
run git clutch --as sam pr review "$PR" --request-changes -m 'Define term too'
fails 1 git clutch --as sam pr merge "$PR" # the gate refuses; MERGE_BLOCKED records why
printf 'term := NUMBER | "(" expr ")"\n' >>grammar.txt
run "${kim_git[@]}" commit -q -a -m 'Grammar: terms'
run git clutch --as kim pr update "$PR" # a new head: earlier reviews no longer count
run git clutch --as sam pr review "$PR" --approve -m 'Thanks'
run git clutch pr show "$PR" --merger sam
run git clutch --as sam pr merge "$PR" # a merge commit signed by sam; main moves to it
run git log --graph --format='%h %an %s' main
run git switch -q main
run cat grammar.txt
run git clutch task show "$T3"
if command -v ssh-keygen >/dev/null; then
    run git -c gpg.ssh.allowedSignersFile=signers verify-commit main
fi

say "Share the log: a bare repository stands in for the server, guarded by clutch's pre-receive hook"
run git init -q --bare -b main "$work/server.git"
run git clutch hooks install --server "$work/server.git" # the hook runs git-clutch: it must be on the server's PATH
run git remote add origin "file://$work/server.git"
run git clutch remote setup # plain git fetch/push now carry refs/clutch/* too, never forced
run git push origin         # the log and main; the hook checked every event on the way in

say "kim's laptop: a second clone with its own CLUTCH_HOME, holding only kim's key"
desk_home="$CLUTCH_HOME"
laptop_home="$work/laptop-home"
run mkdir -p -m 700 "$laptop_home/keys"
shell "cp \"\$CLUTCH_HOME\"/keys/kim-* '$laptop_home/keys/'"
run cd "$work"
run env CLUTCH_HOME="$laptop_home" git clutch clone "file://$work/server.git" laptop # verifies, pins the org, acts as kim

say "Both work apart, then sync: the desk pushes, the laptop joins the logs (a LOG_MERGED signed by kim), the desk fast-forwards"
run cd "$work/demo"
capture T4 git clutch --as sam task new 'Write the README' --project parser
run git clutch sync
run cd "$work/laptop"
run export CLUTCH_HOME="$laptop_home"
printf '# Grammar notes\nterm and expr are done.\n' >"$work/notes.md"
run git clutch artifact add "$T3" "$work/notes.md" --kind note
run git clutch sync
run cd "$work/demo"
run export CLUTCH_HOME="$desk_home"
run git clutch sync
run git log --graph --format='%h %an %s' -4 refs/clutch/log
run git rev-parse refs/clutch/log refs/remotes/origin/clutch/log
run git -C "$work/laptop" rev-parse refs/clutch/log # the same head everywhere
run git clutch task show "$T3"

say "A forgery with plain git: jo writes a perfect-looking CEO event making 'boss' a CEO with jo's key, unsigned"
capture CLOCK git log -1 --format='%(trailers:key=Clutch-Clock,valueonly)' refs/clutch/log
capture_sh JO_KEY "grep '^jo@' signers | cut -d' ' -f3-"
now=$(date -u +%s)
at=$(date -u -d "@$now" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$now" +%Y-%m-%dT%H:%M:%SZ)
clock=$((CLOCK + 1))
cat >event.json <<EOF
{
  "schema": 1,
  "type": "AGENT_REGISTERED",
  "actor_agent_id": "ada",
  "at": "$at",
  "clock": $clock,
  "project": null,
  "task": null,
  "refs": [],
  "cost": {
    "input_tokens": 0,
    "output_tokens": 0,
    "cache_read_tokens": 0,
    "cache_write_tokens": 0,
    "usd_micros": 0,
    "wall_ms": 0,
    "source": "none"
  },
  "payload": {
    "id": "boss",
    "role": "ceo",
    "public_key": "$JO_KEY"
  }
}
EOF
printf 'AGENT_REGISTERED: boss joins as ceo\n\nClutch-Event: AGENT_REGISTERED\nClutch-Actor: ada\nClutch-Clock: %s\n' "$clock" >message
run cat event.json message
capture BLOB git hash-object -w event.json
capture_sh TREE "printf '100644 blob %s\\tevent.json\\n' $BLOB | git mktree"
capture OLD git rev-parse refs/clutch/log
capture FORGED env GIT_AUTHOR_NAME=ada GIT_AUTHOR_EMAIL=ada@clutch.invalid GIT_AUTHOR_DATE="$now +0000" \
    GIT_COMMITTER_NAME=ada GIT_COMMITTER_EMAIL=ada@clutch.invalid GIT_COMMITTER_DATE="$now +0000" \
    git commit-tree --no-gpg-sign "$TREE" -p "$OLD" -F message
run git update-ref refs/clutch/log "$FORGED" "$OLD"

say "Plain git and clutch both reject it; 'boss' never joins"
if command -v ssh-keygen >/dev/null; then
    fails 1 git -c gpg.ssh.allowedSignersFile=signers verify-commit refs/clutch/log
fi
fails 1 git clutch verify
run git clutch agent list

say "The rest of the org goes on: later events are judged without the rejected one"
run git clutch --as sam task assign "$T2" kim
run git clutch log -n 3
fails 1 git clutch verify

say "The server refuses the forged log, so no other clone ever receives it"
fails 1 git push origin refs/clutch/log
fails 1 git clutch sync
run git ls-remote origin refs/clutch/log # still the last good head

say "Tour done in $((SECONDS - started)) s after the build; the org is at $ORG (removed on exit)"
