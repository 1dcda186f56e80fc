//! The runtime layer through the real binary: `run` (pull → run → push) with the built-in
//! in-process agents and with any program through the subprocess runtime, `work` (the
//! scheduler) and `demo` (a whole org at work), each checked against the log it leaves.
//!
//! Every claim is read back from what a user or plain git sees: `log --json`, `state --json`,
//! `cost --json`, `hr scorecard --json`, the branches, `git verify-commit`, the worktrees
//! directory and the processes a run started.
//!
//! The timeout test runs git-clutch behind a guard `kill` on PATH (see `guarded_path`): the
//! `kill` program of procps-ng 4.0.x turns `kill -KILL -PGID` into `kill(-1, SIGKILL)`, and a
//! test must never take the developer's session down with it.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{finished, parse_log, rfc3339, str_field, CommandOutput, Entry, Ident, TestEnv, CLUTCH};

// ---------------------------------------------------------------------------------------------
// Helpers

fn output(out: std::process::Output) -> CommandOutput {
    CommandOutput {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        status: out.status.code().unwrap_or(-1),
    }
}

/// `git clutch ARGS…` in `dir` with `CLUTCH_HOME=home` (a repository that is not the test's).
fn clutch_at<I, S>(env: &TestEnv, dir: &Path, home: &Path, args: I) -> CommandOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = env.command(CLUTCH);
    cmd.current_dir(dir).env("CLUTCH_HOME", home).env("CLUTCH_NOW", rfc3339(env.tick())).args(args);
    output(cmd.output().expect("run git-clutch"))
}

/// Plain `git ARGS…` in `dir`.
fn git_at<I, S>(env: &TestEnv, dir: &Path, args: I) -> CommandOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = env.command("git");
    cmd.current_dir(dir).args(args);
    output(cmd.output().expect("run git"))
}

/// A first commit on `main`, so runs have something to start from. Returns its id.
fn seed_main(env: &TestEnv) -> String {
    std::fs::write(env.repo.join("README.md"), "acme\n").expect("write README");
    env.git_ok(["add", "README.md"]);
    env.git_ok(["commit", "-q", "-m", "initial commit"]);
    main_tip(env)
}

fn main_tip(env: &TestEnv) -> String {
    env.git_ok(["rev-parse", "refs/heads/main"])
}

/// Where a branch points, if it exists.
fn branch_tip(env: &TestEnv, branch: &str) -> Option<String> {
    let out = env.git(["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}")]);
    (out.status == 0).then(|| out.out().to_string())
}

fn log(env: &TestEnv) -> Vec<Entry> {
    parse_log(&env.clutch(["log", "--json"]).success())
}

fn of_kind<'a>(log: &'a [Entry], kind: &str) -> Vec<&'a Entry> {
    log.iter().filter(|e| e.kind() == kind).collect()
}

/// Run ids from `state --json` matched to the RUN_STARTED commit each was derived from
/// (`r-` + the first hex digits of that commit). Panics unless the match is one to one.
#[track_caller]
fn runs_by_start<'a>(state: &Value, log: &'a [Entry]) -> BTreeMap<String, (usize, &'a Entry)> {
    let runs = state["runs"].as_object().expect("state has runs");
    let starts: Vec<(usize, &Entry)> = log.iter().enumerate().filter(|(_, e)| e.kind() == "RUN_STARTED").collect();
    let mut matched = BTreeMap::new();
    for (id, run) in runs {
        let hex = id.strip_prefix("r-").unwrap_or_else(|| panic!("run id {id} starts with r-"));
        let found: Vec<_> = starts.iter().filter(|(_, e)| e.commit.starts_with(hex)).collect();
        assert_eq!(found.len(), 1, "run {id} comes from exactly one RUN_STARTED");
        let (index, start) = *found[0];
        assert_eq!(run["agent"], start.payload()["agent"], "run {id} has the agent of its RUN_STARTED");
        assert_eq!(run["purpose"], start.payload()["purpose"], "run {id} has the purpose of its RUN_STARTED");
        assert_eq!(run["task"].as_str(), start.task(), "run {id} has the task of its RUN_STARTED");
        matched.insert(id.clone(), (index, start));
    }
    assert_eq!(matched.len(), starts.len(), "state has one run per RUN_STARTED event");
    matched
}

/// A task in `core` made by bob (senior) and assigned to `agent`.
fn assigned_task(env: &TestEnv, title: &str, agent: &str) -> String {
    let task = env.new_task("bob", title, &["--project", "core"]);
    env.clutch_as("bob", ["task", "assign", &task, agent]).success();
    task
}

/// Write `body` to `root/<name>.sh` and return the command that runs it.
fn script(env: &TestEnv, name: &str, body: &str) -> String {
    let path = env.root.join(format!("{name}.sh"));
    std::fs::write(&path, body).expect("write the agent script");
    format!("sh {}", path.display())
}

/// Make `agent` a subprocess agent running `command` (as the CEO).
fn subprocess_agent(env: &TestEnv, agent: &str, command: &str, extra: &[&str]) {
    let mut args = vec!["agent".to_string(), "config".into(), agent.into(), "--runtime".into(), "subprocess".into()];
    args.extend(["--runtime-opt".to_string(), format!("command={command}")]);
    for opt in extra {
        args.extend(["--runtime-opt".to_string(), opt.to_string()]);
    }
    env.clutch(args).success();
}

/// The worktrees runs make live here; a finished run leaves none behind.
/// Run worktrees live in the work tree's `.clutch/worktrees/` (excluded from `git status`),
/// not under `.git/`, where Claude Code refuses to write.
fn worktrees_dir(env: &TestEnv) -> PathBuf {
    env.repo.join(".clutch").join("worktrees")
}

#[track_caller]
fn assert_no_worktree_left(env: &TestEnv) {
    let left: Vec<_> = match std::fs::read_dir(worktrees_dir(env)) {
        Ok(entries) => entries.map(|e| e.expect("directory entry").path()).collect(),
        Err(_) => Vec::new(),
    };
    assert!(left.is_empty(), "no worktree is left under .clutch/worktrees: {left:?}");
    let listed = env.git_ok(["worktree", "list", "--porcelain"]);
    assert_eq!(listed.lines().filter(|l| l.starts_with("worktree ")).count(), 1, "git knows only the main worktree:\n{listed}");
}

/// After a run that did not succeed: no commit anywhere, no PR, no test run, no worktree, and
/// `main` where it was.
#[track_caller]
fn assert_nothing_half_written(env: &TestEnv, agent: &str, task: &str, main_before: &str, run: &str) {
    let log = log(env);
    let end = finished(&log, run);
    assert_eq!(end.payload()["commit"], Value::Null, "a run that did not succeed records no commit: {}", end.event);
    assert_eq!(main_tip(env), main_before, "main did not move");
    if let Some(tip) = branch_tip(env, &format!("clutch/{agent}/{task}")) {
        assert_eq!(tip, main_before, "the task branch holds no commit of the failed run");
    }
    let state = env.state();
    let prs: Vec<_> = state["governance"]["prs"].as_object().expect("prs").values().filter(|p| p["task"] == task).collect();
    assert!(prs.is_empty(), "no PR for {task}: {prs:?}");
    assert!(
        log.iter().all(|e| !(e.task() == Some(task) && matches!(e.kind(), "PR_OPENED" | "TEST_RUN" | "ARTIFACT_PRODUCED"))),
        "no PR, test run or artifact recorded for {task}"
    );
    assert_eq!(state["runs"][run]["commit"], Value::Null, "state records no commit for {run}");
    assert_no_worktree_left(env);
}

/// The error line (`error: …`) of a command's stderr.
#[track_caller]
fn error_line(out: &CommandOutput) -> &str {
    out.stderr.lines().find_map(|l| l.strip_prefix("error: ")).unwrap_or_else(|| panic!("no 'error: ' line on stderr:\n{out}"))
}

/// The run id a failed `run` names in its error (`run r-… did not succeed: …`).
#[track_caller]
fn failed_run_id(out: &CommandOutput) -> String {
    let line = error_line(out);
    let rest = line.strip_prefix("run ").unwrap_or_else(|| panic!("the error names the run: {line}"));
    rest.split_whitespace().next().expect("a run id").to_string()
}

/// The org of `TestEnv::with_org` with a commit on `main`: alice (CEO), bob (senior), jill and
/// kim (juniors), hank (HR), project `core`. Returns the env and main's first commit.
fn org() -> (TestEnv, String) {
    let env = TestEnv::with_org();
    let main = seed_main(&env);
    (env, main)
}

// ---------------------------------------------------------------------------------------------
// 1. The demo: a whole org at work, checked against its own log

#[test]
fn runtime_demo_runs_clean_and_every_report_agrees_with_its_log() {
    let env = TestEnv::new();
    let dir = env.root.join("demo");
    let home = dir.join(".git").join("clutch-demo-home");
    let demo = env.clutch_in(&env.root, [OsStr::new("demo"), dir.as_os_str()]).success();
    assert!(demo.stdout.contains("6/6 tasks done"), "the demo says it finished:\n{demo}");

    let log = parse_log(&clutch_at(&env, &dir, &home, ["log", "--json"]).success());
    let state = clutch_at(&env, &dir, &home, ["state", "--json"]).success().json();
    assert_eq!(state["events"], log.len(), "state counts every event of the log");
    assert_eq!(state["rejected"], Value::Array(Vec::new()), "nothing rejected");
    assert_eq!(state["refused_runs"], Value::Array(Vec::new()), "no run refused");

    // Every task done, one MERGE_APPROVED each.
    let tasks = state["tasks"].as_object().expect("tasks");
    let created: BTreeSet<String> = of_kind(&log, "TASK_CREATED").iter().map(|e| format!("t-{}", &e.commit[..7])).collect();
    assert_eq!(tasks.keys().cloned().collect::<BTreeSet<_>>(), created, "state has the tasks the log created");
    assert_eq!(tasks.len(), 6, "the demo project has six tasks");
    for (id, task) in tasks {
        assert_eq!(task["status"], "done", "task {id} is done: {task}");
        let merges: Vec<_> = of_kind(&log, "MERGE_APPROVED").into_iter().filter(|e| e.task() == Some(id)).collect();
        assert_eq!(merges.len(), 1, "exactly one MERGE_APPROVED for {id}");
    }
    assert_eq!(of_kind(&log, "MERGE_APPROVED").len(), 6, "one merge per task, none else");
    assert!(of_kind(&log, "MERGE_BLOCKED").is_empty(), "no merge was blocked");

    // Every PR: one REQUEST_CHANGES, then one approval on the new head, then the merge.
    let prs = state["governance"]["prs"].as_object().expect("prs");
    assert_eq!(prs.len(), 6, "one PR per task");
    for (id, pr) in prs {
        assert_eq!(pr["status"], "merged", "{id} is merged");
        let reviews: Vec<&Entry> = of_kind(&log, "REVIEW_COMMENTED").into_iter().filter(|e| e.payload()["pr"] == id.as_str()).collect();
        let verdicts: Vec<&str> = reviews.iter().map(|e| str_field(e.payload(), "verdict")).collect();
        assert_eq!(verdicts, ["request_changes", "approve"], "{id}: one round of changes, then one approval");
        let heads = pr["heads"].as_array().expect("heads");
        assert_eq!(heads.len(), 2, "{id}: opened, then updated once");
        assert_eq!(reviews[0].payload()["head"], heads[0], "{id}: changes asked on the first head");
        assert_eq!(reviews[1].payload()["head"], heads[1], "{id}: approval on the reworked head");
        assert_ne!(reviews[1].actor(), str_field(pr, "author"), "{id}: nobody approves their own PR");
        let merge = of_kind(&log, "MERGE_APPROVED").into_iter().find(|e| e.payload()["pr"] == id.as_str()).expect("merge of the PR");
        assert_eq!(merge.payload()["head"], heads[1], "{id}: the approved head is merged");
        assert_eq!(merge.payload()["gate"]["unmet"], Value::Array(Vec::new()), "{id}: the gate was met");
        let test_run = str_field(&merge.payload()["gate"], "test_run");
        let tested = log.iter().find(|e| e.commit == test_run).expect("the gate's TEST_RUN is in the log");
        assert_eq!(tested.actor(), reviews[1].actor(), "{id}: the reviewer ran the tests that count (tests_by=reviewers)");
        assert_eq!((&tested.payload()["commit"], &tested.payload()["passed"]), (&heads[1], &Value::Bool(true)), "{id}: on the merged head");
        let order = |e: &Entry| log.iter().position(|x| x.commit == e.commit).expect("in the log");
        assert!(order(reviews[0]) < order(reviews[1]) && order(reviews[1]) < order(merge), "{id}: changes, approval, merge in that order");
    }

    // Runs: one per RUN_STARTED, each finished exactly once, as its RUN_FINISHED says.
    let runs = runs_by_start(&state, &log);
    assert_eq!(runs.len(), 24, "6 tasks × (2 work runs + 2 review runs)");
    for id in runs.keys() {
        let end = finished(&log, id);
        let run = &state["runs"][id];
        assert_eq!(run["status"], end.payload()["status"], "{id}: status as RUN_FINISHED says");
        assert_eq!(run["status"], "succeeded", "{id} succeeded");
        assert_eq!(run["commit"], end.payload()["commit"], "{id}: commit as RUN_FINISHED says");
        assert_eq!(run["spend"]["usd_micros"], end.event["cost"]["usd_micros"], "{id}: spend is its RUN_FINISHED's cost");
        assert_eq!(run["spend"]["wall_ms"], end.event["cost"]["wall_ms"], "{id}: wall time is its RUN_FINISHED's");
    }
    assert_eq!(of_kind(&log, "RUN_FINISHED").len(), runs.len(), "no RUN_FINISHED without a run");

    // Cost: totals and rows are sums over the events.
    let cost = clutch_at(&env, &dir, &home, ["cost", "--json"]).success().json();
    let sum = |filter: &dyn Fn(&Entry) -> bool, field: &str| -> u64 {
        log.iter().filter(|e| filter(e)).map(|e| e.event["cost"][field].as_u64().expect("a cost figure")).sum()
    };
    let fields = ["usd_micros", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "wall_ms"];
    assert_eq!(cost["total"]["events"], log.len(), "cost counts every event");
    for field in fields {
        assert_eq!(cost["total"][field], sum(&|_| true, field), "total {field} is the sum over the events");
    }
    let actors: BTreeSet<&str> = log.iter().map(Entry::actor).collect();
    let rows = cost["rows"].as_array().expect("rows");
    assert_eq!(rows.iter().map(|r| str_field(r, "key")).collect::<BTreeSet<_>>(), actors, "one row per acting agent");
    for row in rows {
        let agent = str_field(row, "key");
        assert_eq!(row["events"], log.iter().filter(|e| e.actor() == agent).count(), "{agent}: events");
        for field in fields {
            assert_eq!(row[field], sum(&|e| e.actor() == agent, field), "{agent}: {field} is the sum over its events");
        }
    }

    // Scorecards: each figure recomputed from the log.
    let cards = clutch_at(&env, &dir, &home, ["hr", "scorecard", "--json", "--window", "all"]).success().json();
    let cards = cards.as_array().expect("scorecards");
    let merged_prs: BTreeSet<&str> = of_kind(&log, "MERGE_APPROVED").iter().map(|e| str_field(e.payload(), "pr")).collect();
    for card in cards {
        let agent = str_field(card, "agent");
        let opened: Vec<String> =
            of_kind(&log, "PR_OPENED").iter().filter(|e| e.actor() == agent).map(|e| format!("pr-{}", &e.commit[..7])).collect();
        let merged = opened.iter().filter(|p| merged_prs.contains(p.as_str())).count();
        let done = tasks.values().filter(|t| t["assignee"] == agent && t["status"] == "done").count();
        let tests: Vec<bool> = of_kind(&log, "TEST_RUN")
            .iter()
            .filter(|e| e.actor() == agent)
            .map(|e| e.payload()["passed"].as_bool().expect("passed"))
            .collect();
        assert_eq!(card["tasks_done"], done, "{agent}: tasks done");
        assert_eq!(card["prs_opened"], opened.len(), "{agent}: PRs opened");
        assert_eq!(card["prs_merged"], merged, "{agent}: PRs merged");
        assert_eq!(card["test_runs"], tests.len(), "{agent}: test runs");
        assert_eq!(card["usd_micros"], sum(&|e| e.actor() == agent, "usd_micros"), "{agent}: dollars");
        let tokens = sum(&|e| e.actor() == agent, "input_tokens") + sum(&|e| e.actor() == agent, "output_tokens");
        assert_eq!(card["tokens"], tokens, "{agent}: tokens");
        if merged > 0 {
            assert_eq!(card["review_rounds_per_merged_pr"], 2.0, "{agent}: every PR took two heads");
            assert_eq!(card["first_review_approval_rate"], 0.0, "{agent}: every first review asked for changes");
        }
        if !tests.is_empty() {
            let rate = tests.iter().filter(|p| **p).count() as f64 / tests.len() as f64;
            assert_eq!(card["test_pass_rate"], rate, "{agent}: test pass rate");
        }
    }
    let total_done: u64 = cards.iter().map(|c| c["tasks_done"].as_u64().expect("tasks_done")).sum();
    assert_eq!(total_done, 6, "the scorecards account for every task");

    // The log verifies, and main is a signed merge commit plain git accepts.
    let verified = clutch_at(&env, &dir, &home, ["verify", "--json"]).success().json();
    assert_eq!(verified["rejected"], Value::Array(Vec::new()), "verify rejects nothing");
    assert_eq!(verified["valid"], log.len(), "verify finds every event valid");
    clutch_at(&env, &dir, &home, ["verify"]).success();
    let main = git_at(&env, &dir, ["rev-parse", "refs/heads/main"]).success().out().to_string();
    let parents = git_at(&env, &dir, ["rev-list", "--parents", "-n", "1", "main"]).success().out().to_string();
    assert_eq!(parents.split_whitespace().count(), 3, "main is a merge commit: {parents}");
    let last_merge = of_kind(&log, "MERGE_APPROVED").last().copied().expect("a merge");
    assert_eq!(last_merge.payload()["result"], main.as_str(), "main is the last merge's result");
    let signers = env.root.join("demo_signers");
    std::fs::write(&signers, clutch_at(&env, &dir, &home, ["signers"]).success().stdout).expect("write the signers file");
    let allowed = format!("gpg.ssh.allowedSignersFile={}", signers.display());
    let verify = git_at(&env, &dir, ["-c", allowed.as_str(), "verify-commit", "main"]).success();
    let merger = last_merge.actor();
    assert!(verify.stderr.contains(&format!("Good \"git\" signature for {merger}")), "main is signed by {merger}:\n{verify}");
}

// ---------------------------------------------------------------------------------------------
// 2. work --parallel 2: dependencies first, one agent per task at a time

#[test]
fn runtime_work_in_parallel_respects_dependencies_and_never_doubles_up_on_a_task() {
    let env = TestEnv::new();
    seed_main(&env);
    env.clutch(["init", "--name", "acme", "--founder", "ceo"]).success();
    let test = "test_command=sh -c 'for f in work/*.md; do grep -q \"^# \" \"$f\" || exit 1; done'";
    env.clutch(["agent", "add", "rev", "--role", "senior", "--runtime", "in-process", "--runtime-opt", "program=reviewer"]).success();
    for junior in ["ann", "ben"] {
        env.clutch([
            "agent",
            "add",
            junior,
            "--role",
            "junior",
            "--runtime",
            "in-process",
            "--runtime-opt",
            "program=worker",
            "--runtime-opt",
            test,
        ])
        .success();
    }
    env.clutch(["decide", "--policy", "require_tests=true", "-m", "tests before main"]).success();
    env.clutch_as("rev", ["project", "new", "core"]).success();
    // a ← b, c, e; d ← b, c; f ← d, e.
    let a = env.new_task("rev", "Spec", &["--project", "core"]);
    let b = env.new_task("rev", "Lexer", &["--project", "core", "--after", &a]);
    let c = env.new_task("rev", "Grammar", &["--project", "core", "--after", &a]);
    let d = env.new_task("rev", "Parser", &["--project", "core", "--after", &b, "--after", &c]);
    let e = env.new_task("rev", "Errors", &["--project", "core", "--after", &a]);
    let f = env.new_task("rev", "Guide", &["--project", "core", "--after", &d, "--after", &e]);
    let deps: BTreeMap<&str, Vec<&str>> =
        [(&a, vec![]), (&b, vec![&a]), (&c, vec![&a]), (&d, vec![&b, &c]), (&e, vec![&a]), (&f, vec![&d, &e])]
            .into_iter()
            .map(|(t, ds)| (t.as_str(), ds.into_iter().map(String::as_str).collect()))
            .collect();

    let report = env.clutch(["work", "--parallel", "2", "--json"]).success().json();
    assert_eq!(report["errors"], Value::Array(Vec::new()), "work ran without problems: {report}");
    assert_eq!(report["merged"].as_array().expect("merged").len(), 6, "six merges: {report}");

    let log = log(&env);
    let state = env.state();
    for task in deps.keys() {
        assert_eq!(state["tasks"][task]["status"], "done", "{task} is done");
    }
    let index = |e: &Entry| log.iter().position(|x| x.commit == e.commit).expect("in the log");
    let merge_of = |task: &str| {
        let merges: Vec<_> = of_kind(&log, "MERGE_APPROVED").into_iter().filter(|e| e.task() == Some(task)).collect();
        assert_eq!(merges.len(), 1, "one merge for {task}");
        index(merges[0])
    };

    // Never a task before its dependencies are merged.
    for (&task, after) in &deps {
        let first_start =
            log.iter().position(|e| e.kind() == "RUN_STARTED" && e.task() == Some(task)).unwrap_or_else(|| panic!("{task} was worked"));
        let claimed = log.iter().position(|e| e.kind() == "TASK_ASSIGNED" && e.task() == Some(task)).expect("claimed");
        for dep in after {
            let merged = merge_of(dep);
            assert!(merged < claimed, "{task} was claimed (#{claimed}) after {dep} was merged (#{merged})");
            assert!(merged < first_start, "{task} first ran (#{first_start}) after {dep} was merged (#{merged})");
        }
    }

    // Never two runs on one task at once; only the assignee works it, only rev reviews.
    let runs = runs_by_start(&state, &log);
    let mut spans: BTreeMap<String, Vec<(usize, usize, String)>> = BTreeMap::new();
    for (id, (start, entry)) in &runs {
        let end = index(finished(&log, id));
        let task = entry.task().expect("a run names its task").to_string();
        let agent = entry.actor().to_string();
        match str_field(entry.payload(), "purpose") {
            "work" => assert_eq!(state["tasks"][&task]["assignee"], agent.as_str(), "{id}: only {task}'s assignee works it"),
            "review" => assert_eq!(agent, "rev", "{id}: the senior reviews"),
            other => panic!("{id}: unknown purpose {other}"),
        }
        spans.entry(task).or_default().push((*start, end, agent));
    }
    for (task, list) in &mut spans {
        list.sort();
        for pair in list.windows(2) {
            assert!(
                pair[0].1 < pair[1].0,
                "{task}: run of {} (#{}–#{}) overlaps run of {} (#{}–#{})",
                pair[0].2,
                pair[0].0,
                pair[0].1,
                pair[1].2,
                pair[1].0,
                pair[1].1
            );
        }
        let assigned: Vec<_> = log.iter().filter(|e| e.kind() == "TASK_ASSIGNED" && e.task() == Some(task.as_str())).collect();
        assert_eq!(assigned.len(), 1, "{task} was assigned once");
    }

    // And it did run in parallel: at some point two runs (on different tasks) were open at once.
    let all: Vec<(usize, usize)> = spans.values().flatten().map(|(s, e, _)| (*s, *e)).collect();
    let overlapping = all.iter().any(|x| all.iter().any(|y| x != y && x.0 < y.0 && y.0 < x.1));
    assert!(overlapping, "with --parallel 2 some runs overlap: {spans:?}");
    // Both juniors got work.
    let workers: BTreeSet<&str> = deps.keys().map(|t| state["tasks"][t]["assignee"].as_str().expect("assignee")).collect();
    assert_eq!(workers, BTreeSet::from(["ann", "ben"]), "both juniors worked");
    // The policy held: every merge names a passing test run on its head.
    for merge in of_kind(&log, "MERGE_APPROVED") {
        assert_eq!(merge.payload()["gate"]["require_tests"], true, "the policy wants tests");
        assert!(merge.payload()["gate"]["test_run"].is_string(), "merged on a test run: {}", merge.event);
    }
}

#[test]
fn runtime_work_with_tests_by_reviewers_has_the_reviewer_run_the_tests_it_merges_on() {
    let env = TestEnv::new();
    seed_main(&env);
    env.clutch(["init", "--name", "acme", "--founder", "ceo"]).success();
    let inner = "for f in work/*.md; do grep -q \"^# \" \"$f\" || exit 1; done";
    let test = format!("test_command=sh -c '{inner}'");
    env.clutch(["agent", "add", "rev", "--role", "senior", "--runtime", "in-process", "--runtime-opt", "program=reviewer"]).success();
    env.clutch([
        "agent",
        "add",
        "ann",
        "--role",
        "junior",
        "--runtime",
        "in-process",
        "--runtime-opt",
        "program=worker",
        "--runtime-opt",
        &test,
    ])
    .success();
    env.clutch(["decide", "--policy", "require_tests=true", "--policy", "tests_by=reviewers", "-m", "tests by reviewers"]).success();

    // The reviewer has no test_command: ann's own tests do not count, so the approved PR
    // waits, and work says for what.
    let first = env.new_task("rev", "Spec", &[]);
    let out = env.clutch(["work"]).success();
    let prs = env.state()["governance"]["prs"].clone();
    let pr = prs.as_object().expect("prs").keys().next().expect("ann opened a PR").clone();
    assert!(out.stdout.contains(&format!("{pr} waits: no TEST_RUN on head")), "{out}");
    assert!(out.stdout.contains("by a senior or the ceo other than ann (policy tests_by=reviewers; ann's own does not count)"), "{out}");
    assert!(out.stdout.contains("0 merges, 1 PR waiting"), "{out}");
    let report = env.clutch(["work", "--json"]).success().json();
    assert_eq!(report["waiting"][0][0], pr.as_str(), "{report}");

    // The reviewer runs them by hand: the next work merges.
    env.clutch_as("rev", ["test", "run", "--pr", &pr, "--", "sh", "-c", inner]).success();
    let report = env.clutch(["work", "--json"]).success().json();
    assert_eq!(report["merged"].as_array().expect("merged").len(), 1, "{report}");

    // With a test_command of its own, the reviewer runs the tests when it approves.
    env.clutch(["agent", "config", "rev", "--runtime", "in-process", "--runtime-opt", "program=reviewer", "--runtime-opt", &test])
        .success();
    let second = env.new_task("rev", "Guide", &[]);
    let report = env.clutch(["work", "--json"]).success().json();
    assert_eq!(report["errors"], Value::Array(Vec::new()), "work ran without problems: {report}");
    assert_eq!(report["merged"].as_array().expect("merged").len(), 1, "merged: {report}");
    assert_eq!(report["waiting"], Value::Array(Vec::new()), "nothing waits: {report}");
    let log = log(&env);
    let state = env.state();
    for task in [&first, &second] {
        assert_eq!(state["tasks"][task]["status"], "done", "{task} is done");
    }
    for merge in of_kind(&log, "MERGE_APPROVED") {
        let test_run = str_field(&merge.payload()["gate"], "test_run");
        let tested = log.iter().find(|e| e.commit == test_run).unwrap_or_else(|| panic!("the gate's test run {test_run} is in the log"));
        assert_eq!(tested.kind(), "TEST_RUN");
        assert_eq!(tested.actor(), "rev", "the reviewer ran the tests the merge counts: {}", tested.event);
        assert_eq!(tested.payload()["commit"], merge.payload()["head"], "on the merged head");
        assert_eq!(tested.payload()["passed"], true);
    }
    assert!(of_kind(&log, "TEST_RUN").iter().any(|e| e.actor() == "ann"), "ann's own test runs are in the log");
    let reviews: Vec<&Value> = report["runs"].as_array().expect("runs").iter().filter(|r| r["purpose"] == "review").collect();
    assert!(reviews.iter().any(|r| r["verdict"] == "approve" && r["tests_passed"] == true), "the approving review ran the tests: {report}");

    // Tests that fail under the reviewer turn its approval into a request for changes: the
    // task goes back to ann instead of waiting. (This check fails once, then passes.)
    let once = env.root.join("failed-once");
    let flaky = format!("test_command=sh -c 'if [ -e {o} ]; then {inner}; else touch {o}; exit 3; fi'", o = once.display());
    env.clutch(["agent", "config", "rev", "--runtime", "in-process", "--runtime-opt", "program=reviewer", "--runtime-opt", &flaky])
        .success();
    let third = env.new_task("rev", "Appendix", &[]);
    let report = env.clutch(["work", "--json"]).success().json();
    let runs = report["runs"].as_array().expect("runs");
    let failed_review = runs
        .iter()
        .find(|r| r["purpose"] == "review" && r["tests_passed"] == false)
        .unwrap_or_else(|| panic!("a review ran the failing tests: {report}"));
    assert_eq!(failed_review["verdict"], "request_changes", "{report}");
    assert!(str_field(failed_review, "summary").contains("the tests fail on head"), "{report}");
    assert!(str_field(failed_review, "summary").contains("exit 3"), "{report}");
    let after = runs.iter().position(|r| r == failed_review).expect("in the runs");
    assert!(runs[after..].iter().any(|r| r["purpose"] == "work" && r["agent"] == "ann"), "the task went back to ann: {report}");
    // The built-in worker has nothing more to change: work says so and stops, instead of
    // giving the task back forever.
    let errors: Vec<&str> = report["errors"].as_array().expect("errors").iter().filter_map(Value::as_str).collect();
    assert!(errors.iter().any(|e| e.contains(&format!("{third}: ann's rework changed nothing"))), "{report}");
    assert_eq!(report["merged"], Value::Array(Vec::new()), "{report}");

    // A fix pushed by hand gets a new review; the tests pass now and the merge goes through.
    let pr = str_field(&runs[after], "pr").to_string();
    let branch = str_field(&env.state()["governance"]["prs"][&pr], "head_branch").to_string();
    env.git_ok(["checkout", "-q", &branch]);
    std::fs::write(env.repo.join("fix.txt"), "fixed\n").expect("write the fix");
    env.git_ok(["add", "fix.txt"]);
    env.git_ok(["commit", "-q", "-m", "fix"]);
    env.git_ok(["checkout", "-q", "main"]);
    env.clutch_as("ann", ["pr", "update", &pr]).success();
    let report = env.clutch(["work", "--json"]).success().json();
    assert_eq!(report["merged"].as_array().expect("merged").len(), 1, "merged in the end: {report}");
    assert_eq!(env.state()["tasks"][&third]["status"], "done");
}

#[test]
fn runtime_work_in_parallel_four_survives_its_own_concurrent_worktrees() {
    // Four runs at once, reviews and work mixed: each run adds and removes a git worktree while
    // the others do. `git worktree add` reads every other worktree's admin files, so runs must
    // not race one another's half-made or half-removed worktrees.
    let env = TestEnv::new();
    seed_main(&env);
    env.clutch(["init", "--name", "acme", "--founder", "ceo"]).success();
    for senior in ["rae", "rex"] {
        env.clutch(["agent", "add", senior, "--role", "senior", "--runtime", "in-process", "--runtime-opt", "program=reviewer"]).success();
    }
    for junior in ["ann", "ben", "cat", "dan"] {
        env.clutch(["agent", "add", junior, "--role", "junior", "--runtime", "in-process", "--runtime-opt", "program=worker"]).success();
    }
    let tasks: Vec<String> = (1..=12).map(|i| env.new_task("rae", &format!("Chapter {i}"), &[])).collect();
    let out = env.clutch(["work", "--parallel", "4", "--json"]);
    assert_eq!(out.status, 0, "work --parallel 4 finishes:\n{out}");
    let report = out.json();
    assert_eq!(report["errors"], Value::Array(Vec::new()), "no run failed: {report}");
    let state = env.state();
    for task in &tasks {
        assert_eq!(state["tasks"][task]["status"], "done", "{task} is done");
    }
    assert_no_worktree_left(&env);
}

// ---------------------------------------------------------------------------------------------
// 3. The subprocess runtime

#[test]
fn runtime_subprocess_commit_is_signed_on_the_task_branch_with_a_pr_and_the_reply_cost() {
    let (env, main) = org();
    let job_file = env.root.join("job.json");
    let command = script(
        &env,
        "agent",
        &format!(
            r#"cat > '{job}'
mkdir -p notes
printf 'notes for %s (%s)\n' "$CLUTCH_TASK_ID" "$CLUTCH_PURPOSE" > "notes/$CLUTCH_TASK_ID.txt"
echo "working on $CLUTCH_TASK_TITLE"
echo '{{"status": "succeeded", "summary": "wrote the notes", "cost": {{"input_tokens": 1200, "output_tokens": 340, "usd_micros": 4200}}}}'
"#,
            job = job_file.display()
        ),
    );
    subprocess_agent(&env, "kim", &command, &[]);
    let task = assigned_task(&env, "Take notes", "kim");

    let report = env.clutch(["run", &task, "--json"]).success().json();
    assert_eq!(report["agent"], "kim", "the assignee runs: {report}");
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["summary"], "wrote the notes", "the reply's summary: {report}");
    let run = str_field(&report, "run").to_string();
    let commit = str_field(&report, "commit").to_string();
    let pr = str_field(&report, "pr").to_string();

    // The job went in on stdin.
    let job: Value = serde_json::from_str(&std::fs::read_to_string(&job_file).expect("the script saved its job")).expect("job JSON");
    assert_eq!(job["agent"], "kim");
    assert_eq!(job["purpose"], "work");
    assert_eq!(job["task"]["id"], task.as_str());
    assert_eq!(job["task"]["title"], "Take notes");
    assert!(str_field(&job, "workdir").starts_with(&worktrees_dir(&env).display().to_string()), "works in a run worktree: {job}");
    assert!(str_field(&job, "prompt").contains(&task), "the prompt names the task: {job}");

    // The file landed in a commit on clutch/kim/<task>, made and signed by kim, on main.
    let branch = format!("clutch/kim/{task}");
    assert_eq!(branch_tip(&env, &branch).as_deref(), Some(commit.as_str()), "{branch} holds the run's commit");
    assert_eq!(env.git_ok(["rev-parse", &format!("{commit}^")]), main, "the commit starts from main");
    assert_eq!(env.git_ok(["show", &format!("{commit}:notes/{task}.txt")]), format!("notes for {task} (work)"));
    let changed = env.git_ok(["diff-tree", "--no-commit-id", "--name-only", "-r", &main, &commit]);
    assert_eq!(changed, format!("notes/{task}.txt"), "exactly the agent's file is committed");
    let raw = env.raw_commit(&commit);
    let author = Ident::parse(raw.header("author")[0]);
    assert_eq!((author.name.as_str(), author.email.as_str()), ("kim", "kim@clutch.invalid"), "kim is the author");
    assert!(raw.message().contains(&format!("Clutch-Run: {run}")), "the commit names its run:\n{}", raw.text);
    let signers = env.signers_file();
    let verified = env.git_verify_commit(&signers, &commit).success();
    assert!(verified.stderr.contains("Good \"git\" signature for kim"), "signed by kim:\n{verified}");
    assert_eq!(main_tip(&env), main, "main does not move before a merge");

    // A PR is open on that head.
    let state = env.state();
    let p = &state["governance"]["prs"][&pr];
    assert_eq!(p["author"], "kim");
    assert_eq!(p["head"], commit.as_str());
    assert_eq!(p["head_branch"], branch.as_str());
    assert_eq!(p["base"], "main");
    assert_eq!(p["status"], "open");
    assert_eq!(p["task"], task.as_str());

    // RUN_FINISHED carries the reply's cost; state's run, agent and task spend agree.
    let log = log(&env);
    let end = finished(&log, &run);
    assert_eq!(end.actor(), "kim");
    assert_eq!(end.payload()["status"], "succeeded");
    assert_eq!(end.payload()["exit_code"], 0);
    assert_eq!(end.payload()["commit"], commit.as_str());
    let cost = &end.event["cost"];
    assert_eq!((&cost["input_tokens"], &cost["output_tokens"], &cost["usd_micros"]), (&1200.into(), &340.into(), &4200.into()));
    assert_eq!(cost["source"], "provider", "dollars the agent reported");
    let transcript = env.git_ok(["show", &format!("{}:files/transcript.txt", end.commit)]);
    assert!(transcript.contains("working on Take notes"), "the transcript is kept with the run: {transcript}");
    assert_eq!(state["runs"][&run]["status"], "succeeded");
    assert_eq!(state["runs"][&run]["spend"]["usd_micros"], 4200);
    assert_eq!(state["agents"]["kim"]["spend"]["usd_micros"], 4200);
    assert_eq!(state["agents"]["kim"]["spend"]["input_tokens"], 1200);
    assert_eq!(state["tasks"][&task]["spend"]["usd_micros"], 4200);
    assert_no_worktree_left(&env);
    env.clutch(["verify"]).success();
}

#[test]
fn runtime_subprocess_missing_command_fails_the_run_and_says_which_program() {
    let (env, main) = org();
    subprocess_agent(&env, "kim", "no-such-program-xyz --do-it", &[]);
    let task = assigned_task(&env, "Call a program that is not there", "kim");
    let out = env.clutch(["run", &task, "--agent", "kim"]).code(1);
    let run = failed_run_id(&out);
    let log = log(&env);
    let end = finished(&log, &run);
    assert_eq!(end.payload()["status"], "failed", "{}", end.event);
    assert_eq!(end.payload()["exit_code"], 127, "sh's 'command not found': {}", end.event);
    assert_nothing_half_written(&env, "kim", &task, &main, &run);
    // Reported clearly: the user is told which program could not be run, not just "exit 127".
    let error = error_line(&out);
    assert!(error.contains("no-such-program-xyz"), "the error names the missing program:\n{out}");
    let summary = str_field(end.payload(), "summary");
    assert!(summary.contains("no-such-program-xyz"), "RUN_FINISHED's summary names the missing program: {summary:?}");
}

#[test]
fn runtime_subprocess_nonzero_exit_fails_the_run_without_a_commit_or_pr() {
    let (env, main) = org();
    let command = script(&env, "agent", "echo half > half-done.txt\necho 'could not finish' >&2\nexit 3\n");
    subprocess_agent(&env, "kim", &command, &[]);
    let task = assigned_task(&env, "Fail halfway", "kim");
    let out = env.clutch(["run", &task, "--agent", "kim"]).code(1);
    let run = failed_run_id(&out);
    assert!(error_line(&out).contains("exit 3"), "the error says how the program exited:\n{out}");
    let log = log(&env);
    let end = finished(&log, &run);
    assert_eq!(end.payload()["status"], "failed");
    assert_eq!(end.payload()["exit_code"], 3);
    let transcript = env.git_ok(["show", &format!("{}:files/transcript.txt", end.commit)]);
    assert!(transcript.contains("could not finish"), "the program's stderr is kept with the run: {transcript}");
    assert_nothing_half_written(&env, "kim", &task, &main, &run);
    assert_eq!(env.state()["tasks"][&task]["status"], "in_progress", "the task stays with kim, in progress");
}

#[test]
fn runtime_subprocess_failed_reply_fails_the_run_without_a_commit_or_pr() {
    let (env, main) = org();
    let command = script(
        &env,
        "agent",
        "echo draft > draft.txt\necho '{\"status\": \"failed\", \"summary\": \"the spec is contradictory\", \"cost\": {\"usd_micros\": 900}}'\n",
    );
    subprocess_agent(&env, "kim", &command, &[]);
    let task = assigned_task(&env, "Give up politely", "kim");
    let out = env.clutch(["run", &task, "--agent", "kim"]).code(1);
    let run = failed_run_id(&out);
    assert!(error_line(&out).contains("the spec is contradictory"), "the error gives the agent's reason:\n{out}");
    let log = log(&env);
    let end = finished(&log, &run);
    assert_eq!(end.payload()["status"], "failed");
    assert_eq!(end.payload()["exit_code"], 0, "the program exited 0 but said it failed");
    assert_eq!(end.payload()["summary"], "the spec is contradictory");
    assert_eq!(end.event["cost"]["usd_micros"], 900, "a failed run's cost is still counted");
    assert_nothing_half_written(&env, "kim", &task, &main, &run);
}

/// Whether a process is running: `kill -0` succeeds and it is not a zombie (a zombie is dead;
/// it waits only for a parent to reap it, and an orphan's new parent may never do so here).
fn running(env: &TestEnv, pid: u32) -> bool {
    let probe = env
        .command("sh")
        .args(["-c", &format!("kill -0 {pid}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run sh");
    if !probe.success() {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()).unwrap_or("");
    !matches!(state, "" | "Z" | "X")
}

/// Kills, when dropped, whichever of these `sleep` processes (started by this test's agent
/// script) still run, so a failing test leaves nothing behind.
struct Reaper<'a> {
    env: &'a TestEnv,
    pids: Vec<u32>,
}

impl Drop for Reaper<'_> {
    fn drop(&mut self) {
        for pid in &self.pids {
            let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if running(self.env, *pid) && cmdline.contains("sleep") {
                let _ = self.env.command("sh").args(["-c", &format!("kill -KILL {pid}")]).status();
            }
        }
    }
}

/// A `kill` first on PATH that refuses `kill -SIG -PGID` (a negative pid not after `--`) and
/// logs it: procps-ng 4.0.x (Debian 12) keeps only the first digit of that pid, so for a pgid
/// starting with 1 it calls `kill(-1, SIG)` and signals every process the user may signal —
/// the test runner, the shell, the whole session. Any other form goes to the real `kill`.
/// Returns (PATH, log file).
#[allow(clippy::disallowed_methods, reason = "the guard needs the harness's PATH to put itself in front of")]
fn guarded_path(env: &TestEnv) -> (std::ffi::OsString, PathBuf) {
    let inherited = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let real = std::env::split_paths(&inherited).map(|d| d.join("kill")).find(|p| p.is_file());
    let dir = env.root.join("guard");
    std::fs::create_dir_all(&dir).expect("make the guard directory");
    let log = env.root.join("unsafe-kill.log");
    let forward = match real {
        Some(real) => format!("exec '{}' \"$@\"", real.display()),
        None => "exit 127".to_string(),
    };
    let shim = format!(
        r#"#!/bin/sh
first=1
after_dashes=0
for arg in "$@"; do
  if [ "$arg" = "--" ]; then after_dashes=1; continue; fi
  case "$arg" in
    -[0-9]*) if [ $first = 0 ] && [ $after_dashes = 0 ]; then echo "kill $*" >> '{log}'; exit 1; fi ;;
  esac
  first=0
done
{forward}
"#,
        log = log.display()
    );
    let path = dir.join("kill");
    std::fs::write(&path, shim).expect("write the kill guard");
    let mut permissions = std::fs::metadata(&path).expect("guard metadata").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&path, permissions).expect("make the guard executable");
    let joined = std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(&inherited))).expect("join PATH");
    (joined, log)
}

#[test]
fn runtime_subprocess_timeout_kills_the_whole_process_group_and_leaves_no_worktree() {
    let (env, main) = org();
    let pids = env.root.join("pids");
    // The shell and a child of it that does not hold stdout: only a kill of the process group
    // stops both (killing `sh -c` alone leaves the script's shell waiting for its child).
    let command = script(
        &env,
        "agent",
        &format!("echo $$ > '{pids}'\nsleep 8 >/dev/null 2>&1 &\necho $! >> '{pids}'\necho started\nwait\n", pids = pids.display()),
    );
    subprocess_agent(&env, "kim", &command, &["timeout_s=1"]);
    let task = assigned_task(&env, "Take forever", "kim");

    let (path, unsafe_log) = guarded_path(&env);
    let started = std::time::Instant::now();
    let mut cmd = env.command(CLUTCH);
    cmd.env("PATH", &path).env("CLUTCH_NOW", rfc3339(env.tick())).args(["run", &task, "--agent", "kim"]);
    let out = output(cmd.output().expect("run git-clutch"));
    let took = started.elapsed();
    let recorded: Vec<u32> =
        std::fs::read_to_string(&pids).expect("the script wrote its pids").lines().map(|l| l.trim().parse().expect("a pid")).collect();
    let _reaper = Reaper { env: &env, pids: recorded.clone() };
    assert_eq!(recorded.len(), 2, "the shell and its child: {recorded:?}");

    let unsafe_kills = std::fs::read_to_string(&unsafe_log).unwrap_or_default();
    assert!(
        unsafe_kills.is_empty(),
        "git-clutch ran `{}` (refused by this test's guard): procps-ng 4.0.x's kill keeps only the first \
         digit of a negative pid that does not follow `--`, so `kill -KILL -12345` is kill(-1, SIGKILL), \
         every process the user may signal, and any other pgid signals the wrong group; call kill(2) \
         with -pgid instead of running the kill program",
        unsafe_kills.trim()
    );
    let out = out.code(1);
    let run = failed_run_id(&out);
    assert!(error_line(&out).contains("killed after 1s"), "the error says the run was killed at the timeout:\n{out}");
    assert!(took.as_secs() < 5, "the run ends at the timeout, not when the program would have ({took:?})");
    let log = log(&env);
    let end = finished(&log, &run);
    assert_eq!(end.payload()["status"], "timed_out", "{}", end.event);
    assert_eq!(env.state()["runs"][&run]["status"], "timed_out");

    for pid in &recorded {
        assert!(!running(&env, *pid), "process {pid} of the timed-out run is gone");
    }
    assert_nothing_half_written(&env, "kim", &task, &main, &run);
}

/// Start `git clutch ARGS…` in the background, wait (bounded) until its agent script has
/// written two pids to `pids`, send `signal` to git-clutch alone, and return what it said (its
/// status as a shell reports it: 128 + N when signal N ended it), the signal that ended it, and
/// the agent's pids (killed at the end of the test if still there).
fn interrupt_run(env: &TestEnv, args: &[&str], pids: &Path, signal: rustix::process::Signal) -> (CommandOutput, Option<i32>, Vec<u32>) {
    interrupt_run_of(env, env.command(CLUTCH), args, pids, signal)
}

/// [`interrupt_run`] of `cmd` (git-clutch, or a program that execs it).
fn interrupt_run_of(
    env: &TestEnv,
    mut cmd: std::process::Command,
    args: &[&str],
    pids: &Path,
    signal: rustix::process::Signal,
) -> (CommandOutput, Option<i32>, Vec<u32>) {
    use std::io::Read as _;
    use std::os::unix::process::ExitStatusExt as _;
    let _ = std::fs::remove_file(pids);
    cmd.env("CLUTCH_NOW", rfc3339(env.tick())).args(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("start git-clutch");
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = read(Box::new(child.stderr.take().expect("piped stderr")));
    let recorded =
        || -> Vec<u32> { std::fs::read_to_string(pids).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect() };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while recorded().len() < 2 && std::time::Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a pid");
    rustix::process::kill_process(pid, signal).expect("signal git-clutch");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (status, killed_by) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (status.code().or(status.signal().map(|n| 128 + n)).unwrap_or(-1), status.signal()),
            _ if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break (-1, None);
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    };
    let out = CommandOutput { stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default(), status };
    (out, killed_by, recorded())
}

#[test]
fn runtime_a_signal_stops_the_agent_records_the_run_and_exits_as_the_signal_would() {
    use rustix::process::Signal;
    let (env, main) = org();
    let pids = env.root.join("pids");
    let command = script(
        &env,
        "agent",
        &format!("echo $$ >> '{pids}'\nsleep 300 >/dev/null 2>&1 &\necho $! >> '{pids}'\nwait\n", pids = pids.display()),
    );
    subprocess_agent(&env, "kim", &command, &["timeout_s=600"]);
    for (signal, name, code) in [(Signal::INT, "SIGINT", 130), (Signal::TERM, "SIGTERM", 143), (Signal::HUP, "SIGHUP", 129)] {
        let task = assigned_task(&env, &format!("Be stopped by {name}"), "kim");
        let (out, killed_by, recorded) = interrupt_run(&env, &["run", &task], &pids, signal);
        let _reaper = Reaper { env: &env, pids: recorded.clone() };
        assert_eq!(recorded.len(), 2, "{name}: the agent's shell and its child ran: {recorded:?}\n{out}");
        let out = out.code(code);
        assert_eq!(killed_by, Some(code - 128), "{name}: git-clutch ended itself by the signal (a shell loop stops too)");
        assert!(error_line(&out).contains(&format!("interrupted by {name}")), "{name}: the error says so:\n{out}");
        let run = failed_run_id(&out);
        let log = log(&env);
        let end = finished(&log, &run);
        assert_eq!((&end.payload()["status"], &end.payload()["summary"]), (&"failed".into(), &format!("interrupted by {name}").into()));
        for pid in &recorded {
            assert!(!running(&env, *pid), "{name}: process {pid} of the interrupted agent is gone");
        }
        assert_nothing_half_written(&env, "kim", &task, &main, &run);
    }

    // `work` stops at the first signal: the run under way is recorded, no other starts (the
    // three tasks above and these two are all kim's to work on).
    assigned_task(&env, "First of two", "kim");
    assigned_task(&env, "Second of two", "kim");
    let before = log(&env).len();
    let (out, killed_by, recorded) = interrupt_run(&env, &["work"], &pids, Signal::INT);
    let _reaper = Reaper { env: &env, pids: recorded.clone() };
    let out = out.code(130);
    assert_eq!(killed_by, Some(2), "work ended itself by SIGINT");
    assert!(out.stderr.contains("interrupted by SIGINT after"), "{out}");
    let log = log(&env);
    let new = &log[before..];
    let started: Vec<&Entry> = new.iter().filter(|e| e.kind() == "RUN_STARTED").collect();
    assert_eq!(started.len(), 1, "one run started, then work stopped: {started:?}");
    let ended: Vec<&Entry> = new.iter().filter(|e| e.kind() == "RUN_FINISHED").collect();
    assert_eq!(ended.len(), 1, "and it was recorded as finished: {ended:?}");
    assert_eq!(ended[0].payload()["summary"], "interrupted by SIGINT", "{}", ended[0].event);
    for pid in &recorded {
        assert!(!running(&env, *pid), "process {pid} of the interrupted agent is gone");
    }
    assert_no_worktree_left(&env);
}

#[test]
fn runtime_a_signal_stops_a_test_run_and_its_command_and_records_nothing() {
    let (env, _main) = org();
    let pids = env.root.join("pids");
    let command = format!("echo $$ >> '{p}'; sleep 300 >/dev/null 2>&1 & echo $! >> '{p}'; wait", p = pids.display());
    let before = log(&env).len();
    let (out, killed_by, recorded) =
        interrupt_run(&env, &["test", "run", "--", "sh", "-c", &command], &pids, rustix::process::Signal::TERM);
    let _reaper = Reaper { env: &env, pids: recorded.clone() };
    assert_eq!(recorded.len(), 2, "the command and its child ran: {recorded:?}\n{out}");
    let out = out.code(143);
    assert_eq!(killed_by, Some(15), "git-clutch ended itself by SIGTERM");
    assert!(error_line(&out).contains("interrupted by SIGTERM while the tests ran: no TEST_RUN was recorded"), "{out}");
    for pid in &recorded {
        assert!(!running(&env, *pid), "process {pid} of the interrupted test command is gone");
    }
    assert_eq!(log(&env).len(), before, "nothing was recorded");
}

#[test]
fn runtime_a_test_command_that_reads_the_terminal_is_reported_not_waited_on() {
    // A test command runs out of the terminal's foreground (in a group of its own), so one that
    // reads the terminal is stopped by the kernel. `script` gives git-clutch a terminal.
    let (env, _main) = org();
    let before = log(&env).len();
    let inner = format!("'{CLUTCH}' test run -- sh -c 'read answer </dev/tty; echo got $answer'; echo \"clutch exit $?\"");
    let out = env.command("script").args(["-qec", &inner, "/dev/null"]).env("CLUTCH_NOW", rfc3339(env.tick())).output();
    let out = output(out.expect("run script (util-linux)"));
    assert!(out.stdout.contains("stopped to read the terminal"), "the error says why:\n{out}");
    assert!(out.stdout.contains("clutch exit 1"), "git-clutch failed instead of waiting:\n{out}");
    assert_eq!(log(&env).len(), before, "nothing was recorded");
}

#[test]
fn runtime_a_signal_ignored_from_the_start_stays_ignored() {
    // Under nohup, SIGHUP is ignored when git-clutch starts: a closed terminal must not stop
    // the run then.
    let (env, _main) = org();
    let pids = env.root.join("pids");
    let command =
        script(&env, "agent", &format!("echo $$ >> '{p}'\necho $$ >> '{p}'\nsleep 2\necho done > done.txt\n", p = pids.display()));
    subprocess_agent(&env, "kim", &command, &[]);
    let task = assigned_task(&env, "Carry on under nohup", "kim");
    let mut nohup = env.command("nohup");
    nohup.arg(CLUTCH);
    let (out, killed_by, recorded) = interrupt_run_of(&env, nohup, &["run", &task, "--json"], &pids, rustix::process::Signal::HUP);
    let _reaper = Reaper { env: &env, pids: recorded };
    assert_eq!(killed_by, None, "SIGHUP did not end git-clutch:\n{out}");
    let report: Value = serde_json::from_str(&out.success().stdout).expect("the run's JSON report");
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(env.git_ok(["show", &format!("{}:done.txt", str_field(&report, "commit"))]), "done");
}

#[test]
fn runtime_processes_that_leave_the_agents_group_do_not_outlive_the_run() {
    // Three daemons made with setsid (a session and group of their own, out of reach of a kill
    // of the agent's group): one still holding the run's stdout, one detached from it, and one
    // that also cleared its environment, so nothing in it says which run it came from. The run
    // ends when the agent does, and none outlives it.
    let (env, _main) = org();
    let pids = env.root.join("pids");
    let command = script(
        &env,
        "agent",
        &format!(
            "setsid sh -c 'echo $$ >> {p}; exec sleep 300' &\nsetsid sh -c 'echo $$ >> {p}; exec sleep 300' >/dev/null 2>&1 </dev/null &\n\
             setsid env -i /bin/sh -c 'echo $$ >> {p}; exec sleep 300' >/dev/null 2>&1 </dev/null &\n\
             while [ \"$(cat {p} 2>/dev/null | wc -l)\" -lt 3 ]; do sleep 0.1; done\necho done > done.txt\n\
             echo '{{\"summary\": \"left three daemons behind\"}}'\n",
            p = pids.display()
        ),
    );
    subprocess_agent(&env, "kim", &command, &["timeout_s=120"]);
    let task = assigned_task(&env, "Start daemons", "kim");
    let out = env.clutch(["run", &task, "--json"]);
    let recorded: Vec<u32> = std::fs::read_to_string(&pids).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect();
    let _reaper = Reaper { env: &env, pids: recorded.clone() };
    let report = out.success().json();
    assert_eq!((&report["status"], &report["summary"]), (&"succeeded".into(), &"left three daemons behind".into()), "{report}");
    assert_eq!(recorded.len(), 3, "all three daemons started: {recorded:?}");
    for pid in &recorded {
        assert!(!running(&env, *pid), "daemon {pid} did not outlive the run");
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "daemon {pid} was reaped, not left a zombie");
    }
}

#[test]
fn runtime_a_clutch_killed_with_sigkill_leaves_no_agent_running() {
    // SIGKILL gives clutch no chance to clean up. The agent's keeper has clutch's death as its
    // signal: it kills the agent, and the daemon the agent started, on its own.
    let (env, _main) = org();
    let pids = env.root.join("pids");
    let command = script(
        &env,
        "agent",
        &format!(
            "echo $$ >> {p}\nsetsid env -i /bin/sh -c 'echo $$ >> {p}; exec sleep 300' >/dev/null 2>&1 </dev/null &\nexec sleep 300\n",
            p = pids.display()
        ),
    );
    subprocess_agent(&env, "kim", &command, &["timeout_s=600"]);
    let task = assigned_task(&env, "Run until killed", "kim");
    let mut clutch = env
        .command(CLUTCH)
        .args(["run", &task])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start clutch");
    let recorded =
        || -> Vec<u32> { std::fs::read_to_string(&pids).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect() };
    crate::common::poll_until(std::time::Duration::from_secs(60), || recorded().len() >= 2);
    // The keeper is clutch's child: `git-clutch __keep REPORT …`.
    let keeper: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| c.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>())
        .find(|args| args.get(1).is_some_and(|a| a == "__keep") && args.get(4).is_some_and(|p| *p == clutch.id().to_string()))
        .expect("clutch runs the agent under a keeper");
    // It reports into a file only clutch holds (no path an agent could swap for a FIFO or a
    // link), so nothing is left behind either.
    assert!(keeper[2].starts_with(&format!("/proc/{}/fd/", clutch.id())), "the keeper reports through clutch's own descriptor: {keeper:?}");
    clutch.kill().expect("SIGKILL clutch");
    clutch.wait().expect("reap clutch");
    let recorded = recorded();
    let _reaper = Reaper { env: &env, pids: recorded.clone() };
    assert_eq!(recorded.len(), 2, "the agent and its daemon started: {recorded:?}");
    // The keeper works on its own now; give it time to finish (no figure is asserted).
    crate::common::poll_until(std::time::Duration::from_secs(30), || !recorded.iter().any(|pid| running(&env, *pid)));
    for pid in &recorded {
        assert!(!running(&env, *pid), "process {pid} did not outlive clutch");
    }
}

#[test]
fn runtime_runs_go_on_when_the_clutch_binary_is_replaced_during_work() {
    // An upgrade while `work` runs replaces (here: removes) the binary clutch was started
    // from. Every later run still starts its keeper: the running binary, not the path.
    let (env, _main) = org();
    let copy = env.root.join("bin").join("git-clutch");
    std::fs::create_dir_all(copy.parent().expect("bin")).expect("mkdir bin");
    std::fs::copy(CLUTCH, &copy).expect("copy git-clutch");
    let command = script(
        &env,
        "agent",
        &format!(
            "rm -f '{}'\necho \"done $CLUTCH_TASK_ID\" > \"out-$CLUTCH_TASK_ID.txt\"\necho '{{\"summary\": \"wrote it\"}}'\n",
            copy.display()
        ),
    );
    subprocess_agent(&env, "kim", &command, &[]);
    let tasks = [assigned_task(&env, "First", "kim"), assigned_task(&env, "Second", "kim")];
    let mut cmd = env.command(&copy);
    cmd.args(["work", "--until", "2", "--json"]);
    let out = crate::common::run(cmd);
    assert!(!copy.exists(), "the first run removed the binary");
    let report = out.success().json();
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "both runs happened: {report}");
    for run in runs {
        assert_eq!(run["status"], "succeeded", "{report}");
    }
    for task in &tasks {
        assert!(runs.iter().any(|r| r["task"] == task.as_str() && r["commit"].is_string()), "{task} was worked and committed: {report}");
    }
}

#[test]
fn runtime_a_test_command_s_daemons_do_not_outlive_it() {
    // A test suite that starts a server with setsid and leaves it holding its output: the test
    // run ends when the command does, and the server with it.
    let (env, _main) = org();
    let pids = env.root.join("pids");
    let command = format!(
        "setsid sh -c 'echo $$ >> {p}; exec sleep 300' & while [ \"$(cat {p} 2>/dev/null | wc -l)\" -lt 1 ]; do sleep 0.1; done; echo tests pass",
        p = pids.display()
    );
    let out = env.clutch(["test", "run", "--json", "--", "sh", "-c", &command]);
    let recorded: Vec<u32> = std::fs::read_to_string(&pids).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect();
    let _reaper = Reaper { env: &env, pids: recorded.clone() };
    let report = out.success().json();
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(recorded.len(), 1, "the daemon started: {recorded:?}");
    assert!(!running(&env, recorded[0]), "the daemon did not outlive the test run");
}

#[test]
fn runtime_a_session_led_from_outside_the_pid_namespace_still_reaps_daemons() {
    // In a container, or under `unshare --pid --fork`, clutch's session leader lives outside its
    // pid namespace and getsid(2) says 0. clutch once took that 0 for a process id and panicked
    // at the end of every run and test run.
    let (env, _main) = org();
    let pids = env.root.join("pids");
    let daemon = format!(
        "setsid sh -c 'echo $$ > {p}; exec sleep 300' </dev/null >/dev/null 2>&1 & while [ ! -s {p} ]; do sleep 0.1; done; echo tests pass",
        p = pids.display()
    );
    let outer = r#"set -- $(cat /proc/$$/stat); echo "session=$6"
"$CLUTCH" test run --json -- sh -c "$DAEMON"; echo "exit=$?"
pid=$(cat "$PIDS")
if [ -e "/proc/$pid/stat" ]; then set -- $(cat "/proc/$pid/stat"); echo "daemon=$3"; kill -KILL "$pid"; else echo daemon=gone; fi"#;
    let mut cmd = env.command("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "sh", "-c", outer]).env("CLUTCH", CLUTCH).env("DAEMON", &daemon).env("PIDS", &pids);
    let out = crate::common::run(cmd);
    assert_eq!(out.status, 0, "unshare runs (the suite runs as root):\n{out}");
    let said: Vec<&str> = out.stdout.lines().collect();
    assert!(said.contains(&"session=0"), "the session is led from outside the namespace:\n{out}");
    assert!(said.contains(&"exit=0"), "test run succeeded:\n{out}");
    let report: Value = serde_json::from_str(said.iter().find(|l| l.starts_with('{')).expect("the JSON report")).expect("JSON");
    assert_eq!(report["passed"], true, "{report}");
    assert!(said.contains(&"daemon=gone"), "the daemon the test started was killed and reaped:\n{out}");
}

#[test]
fn runtime_budget_spent_refuses_the_next_run_before_it_starts() {
    let (env, _main) = org();
    let command = script(
        &env,
        "agent",
        "echo done > \"out-$CLUTCH_TASK_ID.txt\"\necho '{\"summary\": \"costly\", \"cost\": {\"input_tokens\": 50000, \"usd_micros\": 250000}}'\n",
    );
    subprocess_agent(&env, "kim", &command, &[]);
    let first = assigned_task(&env, "Spend money", "kim");
    env.clutch(["run", &first, "--agent", "kim"]).success();
    assert_eq!(env.state()["agents"]["kim"]["spend"]["usd_micros"], 250_000, "the run's cost is kim's spend");

    env.clutch(["budget", "set", "--scope", "agent:kim", "--usd", "0.000001"]).success();
    let second = assigned_task(&env, "Spend more", "kim");
    let starts_before = of_kind(&log(&env), "RUN_STARTED").len();
    let out = env.clutch(["run", &second, "--agent", "kim"]).code(1);
    let error = out.error();
    assert!(error.contains("refused") && error.contains("agent:kim"), "the error says the agent's budget is spent: {error}");
    assert!(out.stderr.contains("hint: "), "with a hint:\n{out}");

    let log = log(&env);
    assert_eq!(of_kind(&log, "RUN_STARTED").len(), starts_before, "no RUN_STARTED was added");
    let refused: Vec<_> = of_kind(&log, "RUN_REFUSED").into_iter().filter(|e| e.task() == Some(second.as_str())).collect();
    assert_eq!(refused.len(), 1, "one RUN_REFUSED for {second}");
    assert_eq!(refused[0].actor(), "kim");
    assert!(str_field(refused[0].payload(), "reason").contains("agent:kim"), "the refusal names the budget: {}", refused[0].event);
    let state = env.state();
    let recorded = state["refused_runs"].as_array().expect("refused_runs");
    assert_eq!(recorded.len(), 1, "state lists the refusal: {recorded:?}");
    assert!(branch_tip(&env, &format!("clutch/kim/{second}")).is_none(), "no branch for a refused run");
    assert_no_worktree_left(&env);
    env.clutch(["verify"]).success();
}

// ---------------------------------------------------------------------------------------------
// 4. Configuration errors, and review runs

#[test]
fn runtime_agent_without_runtime_gets_an_error_with_a_hint_and_nothing_is_written() {
    let (env, _main) = org();
    let task = assigned_task(&env, "Nobody can run this", "jill");
    let head = env.log_head();
    for args in [vec!["run", task.as_str(), "--agent", "jill"], vec!["run", task.as_str()]] {
        let out = env.clutch(&args).code(1);
        assert_eq!(out.error(), "agent 'jill' has no runtime", "{out}");
        assert!(out.stderr.contains("hint: define one: git clutch agent config jill --runtime"), "the hint shows the fix:\n{out}");
    }
    assert_eq!(env.log_head(), head, "nothing was recorded");
}

#[test]
fn runtime_unknown_runtime_is_refused_when_configured() {
    let (env, _main) = org();
    let head = env.log_head();
    let out = env.clutch(["agent", "config", "jill", "--runtime", "claude-9000"]).code(1);
    let error = out.error();
    assert!(error.contains("no runtime named 'claude-9000'"), "{out}");
    assert!(error.contains("in-process") && error.contains("subprocess"), "the error lists the known runtimes: {error}");
    let out = env.clutch(["agent", "add", "zed", "--role", "junior", "--runtime", "warp-drive"]).code(1);
    assert!(out.error().contains("no runtime named 'warp-drive'"), "{out}");
    assert_eq!(env.log_head(), head, "nothing was recorded");
    let state = env.state();
    assert_eq!(state["agents"]["jill"]["runtime"], Value::Null, "jill still has no runtime");
    assert!(state["agents"].get("zed").is_none(), "zed was not added");
}

#[test]
fn runtime_unusable_settings_are_refused_and_the_refusal_recorded() {
    let (env, _main) = org();
    // What no machine could run is refused when the definition is written, and nothing is.
    for (agent, runtime, opt, needle) in [
        ("jill", "in-process", "program=poet", "no built-in program 'poet'"),
        ("kim", "subprocess", "timeout_s=5", "needs a command setting"),
        ("kim", "subprocess", "timeout_s=0", "timeout_s='0'"),
    ] {
        let head = env.log_head();
        let out = env.clutch(["agent", "config", agent, "--runtime", runtime, "--runtime-opt", opt]).code(1);
        assert!(out.error().contains(needle) && out.error().contains("would refuse every run"), "{agent}: {out}");
        assert!(out.stderr.contains("hint: change the settings"), "{agent}: {out}");
        assert_eq!(env.log_head(), head, "{agent}: nothing was written");
        assert_eq!(env.state()["agents"][agent]["runtime"], Value::Null, "{agent} has no runtime");
    }
    // What only this machine lacks is refused when a run starts, and the refusal is recorded.
    env.clutch(["agent", "config", "kim", "--runtime", "claude", "--runtime-opt", "bin=/nonexistent/claude"]).success();
    let task = assigned_task(&env, "For kim", "kim");
    let out = env.clutch(["run", &task, "--agent", "kim"]).code(1);
    let needle = "/nonexistent/claude does not exist";
    assert!(out.error().contains(needle), "the refusal says why:\n{out}");
    let log = log(&env);
    assert!(of_kind(&log, "RUN_STARTED").iter().all(|e| e.task() != Some(task.as_str())), "no run started");
    let refused: Vec<_> = of_kind(&log, "RUN_REFUSED").into_iter().filter(|e| e.task() == Some(task.as_str())).collect();
    assert_eq!(refused.len(), 1, "the refusal is recorded");
    assert!(str_field(refused[0].payload(), "reason").contains(needle), "{}", refused[0].event);
    assert_no_worktree_left(&env);
}

#[test]
fn runtime_review_run_by_a_senior_records_the_review_on_the_head() {
    let (env, _main) = org();
    env.clutch(["agent", "config", "bob", "--runtime", "in-process", "--runtime-opt", "program=reviewer"]).success();
    env.clutch(["agent", "config", "jill", "--runtime", "in-process", "--runtime-opt", "program=worker"]).success();
    let task = assigned_task(&env, "Write it down", "jill");
    let worked = env.clutch(["run", &task, "--json"]).success().json();
    let pr = str_field(&worked, "pr").to_string();
    let first_head = str_field(&worked, "commit").to_string();

    let reviewed = env.clutch_as("bob", ["run", "--review", &pr, "--json"]).success().json();
    assert_eq!(reviewed["agent"], "bob");
    assert_eq!(reviewed["purpose"], "review");
    assert_eq!(reviewed["verdict"], "request_changes", "the built-in reviewer asks for a tests section first: {reviewed}");
    assert_eq!(reviewed["commit"], Value::Null, "a review run commits nothing");
    let run = str_field(&reviewed, "run").to_string();
    let log = log(&env);
    let start = of_kind(&log, "RUN_STARTED").into_iter().last().expect("the review run started");
    assert_eq!((start.actor(), &start.payload()["purpose"], &start.payload()["pr"]), ("bob", &"review".into(), &pr.as_str().into()));
    assert_eq!(finished(&log, &run).payload()["status"], "succeeded");
    let state = env.state();
    let reviews = state["governance"]["prs"][&pr]["reviews"].as_array().expect("reviews").clone();
    assert_eq!(reviews.len(), 1, "one review recorded: {reviews:?}");
    assert_eq!((&reviews[0]["by"], &reviews[0]["verdict"]), (&"bob".into(), &"request_changes".into()));
    assert_eq!(reviews[0]["head"], first_head.as_str(), "the review binds to the head it saw");

    // The worker answers the review on the same branch; the next review approves the new head.
    let reworked = env.clutch(["run", &task, "--json"]).success().json();
    assert_eq!(reworked["pr"], pr.as_str(), "the rework updates the same PR");
    let second_head = str_field(&reworked, "commit").to_string();
    assert_eq!(env.git_ok(["rev-parse", &format!("{second_head}^")]), first_head, "the rework builds on the first head");
    let approved = env.clutch(["run", "--review", &pr, "--agent", "bob", "--json"]).success().json();
    assert_eq!(approved["verdict"], "approve", "{approved}");
    let state = env.state();
    let reviews = state["governance"]["prs"][&pr]["reviews"].as_array().expect("reviews").clone();
    assert_eq!(reviews.len(), 2);
    assert_eq!((&reviews[1]["verdict"], &reviews[1]["head"]), (&"approve".into(), &second_head.as_str().into()));
    env.clutch_as("bob", ["pr", "merge", &pr]).success();
    assert_eq!(env.state()["tasks"][&task]["status"], "done", "the merge closes the task");
    assert_no_worktree_left(&env);
}
