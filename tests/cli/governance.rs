//! Governance through the real binary: hiring and firing through HR proposals and the CEO's
//! decisions, PRs on real branches, reviews bound to heads, the merge gate both ways, policy,
//! budgets, forged events that break a gate, and the cost and scorecard reports checked
//! against the log they are computed from.
//!
//! Every refusal is checked to exit non-zero, to name what was unmet, to leave `main` where it
//! was, and (for a merge attempt) to leave a MERGE_BLOCKED behind in the log.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::common::{commit_message, rfc3339, str_field, CommandOutput, Ident, TestEnv, CLUTCH, LOG_REF};

/// 2026-11-24T08:00:00Z, the harness's first command (see `common.rs`).
const START: i64 = 1_795_507_200;
const DAY: i64 = 86_400;

// ---------------------------------------------------------------------------------------------
// Helpers

/// `git clutch --as AGENT ARGS…`.
fn run(env: &TestEnv, agent: &str, args: &[&str]) -> CommandOutput {
    env.clutch_as(agent, args)
}

/// `git clutch --as AGENT ARGS…` with the clock pinned at `time` instead of the harness's tick,
/// for tests that need known intervals between events.
fn run_at(env: &TestEnv, time: i64, agent: &str, args: &[&str]) -> CommandOutput {
    let mut cmd = env.command(CLUTCH);
    cmd.env("CLUTCH_NOW", rfc3339(time)).arg("--as").arg(agent).args(args);
    let output = cmd.output().expect("run git-clutch");
    CommandOutput {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        status: output.status.code().unwrap_or(-1),
    }
}

/// Where `main` points, if it exists.
fn main_tip(env: &TestEnv) -> Option<String> {
    let out = env.git(["rev-parse", "--verify", "--quiet", "refs/heads/main"]);
    (out.status == 0).then(|| out.out().to_string())
}

/// A first commit on `main`, so PRs have a base.
fn seed_main(env: &TestEnv) -> String {
    std::fs::write(env.repo.join("README.md"), "acme\n").expect("write README");
    env.git_ok(["add", "README.md"]);
    env.git_ok(["commit", "-q", "-m", "initial commit"]);
    main_tip(env).expect("main exists")
}

/// Switch to `branch` (made from `main` when new), commit `file` with `content`, return the tip.
fn commit_on(env: &TestEnv, branch: &str, file: &str, content: &str) -> String {
    let exists = env.git(["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}")]).status == 0;
    if exists {
        env.git_ok(["checkout", "-q", branch]);
    } else {
        env.git_ok(["checkout", "-q", "-b", branch, "main"]);
    }
    std::fs::write(env.repo.join(file), content).expect("write work file");
    env.git_ok(["add", file]);
    env.git_ok(["commit", "-q", "-m", &format!("{branch}: {file}")]);
    env.git_ok(["rev-parse", "HEAD"])
}

/// The envelope of one event commit.
fn event_json(env: &TestEnv, commit: &str) -> Value {
    serde_json::from_str(&env.git_ok(["show", &format!("{commit}:event.json")])).expect("event.json is JSON")
}

/// The envelope at the head of the log.
fn head_event(env: &TestEnv) -> Value {
    event_json(env, &env.log_head().expect("a log"))
}

/// `git clutch log --json`.
fn log_entries(env: &TestEnv) -> Vec<Value> {
    match env.clutch(["log", "--json"]).success().json() {
        Value::Array(entries) => entries,
        other => panic!("log --json is not an array: {other}"),
    }
}

fn count_events(env: &TestEnv, kind: &str) -> usize {
    log_entries(env).iter().filter(|e| e["event"]["type"] == kind).count()
}

/// The first 10 hex digits of a commit, as gate messages print heads.
fn short(oid: &str) -> &str {
    &oid[..10]
}

/// A task made by bob in `core`, assigned to `junior`, worked on `branch` (one commit), and a PR
/// opened for it by the junior. Returns (task, pr, head).
fn junior_pr(env: &TestEnv, junior: &str, branch: &str) -> (String, String, String) {
    let task = env.new_task("bob", &format!("Deliver {branch}"), &["--project", "core"]);
    run(env, "bob", &["task", "assign", &task, junior]).success();
    let head = commit_on(env, branch, &format!("{branch}.txt"), "first draft\n");
    let opened = run(env, junior, &["pr", "open", "--task", &task, "--head", branch, "--json"]).success().json();
    let pr = str_field(&opened, "id").to_string();
    let event = str_field(&opened, "event");
    assert_eq!(Some(event.to_string()), env.log_head(), "pr open --json names the new head of the log");
    assert_eq!(pr, format!("pr-{}", &event[..7]), "a PR id is pr- and 7 hex digits of its PR_OPENED commit");
    (task, pr, head)
}

/// `pr show PR --json`, with the gate evaluated for `merger`.
fn pr_show(env: &TestEnv, pr: &str, merger: &str) -> Value {
    env.clutch(["pr", "show", pr, "--json", "--merger", merger]).success().json()
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().unwrap_or_else(|| panic!("not an array: {value}")).iter().map(|v| v.as_str().expect("string").to_string()).collect()
}

/// A command that must be refused with exit 1, naming `needle`, and write nothing: neither
/// the log nor `main` moves.
#[track_caller]
fn refused(env: &TestEnv, agent: &str, args: &[&str], needle: &str) -> CommandOutput {
    let log = env.log_head();
    let main = main_tip(env);
    let out = run(env, agent, args).code(1);
    assert!(out.error().contains(needle), "the refusal should say {needle:?}:\n{out}");
    assert_eq!(env.log_head(), log, "a refused command records nothing:\n{out}");
    assert_eq!(main_tip(env), main, "a refused command does not move main");
    out
}

/// `pr merge` that the gate blocks: exit 1 with `merge blocked: <unmet>` naming each needle, a
/// MERGE_BLOCKED by the merger with the same reasons at the head of the log, and `main` unmoved.
/// Returns the unmet conditions.
#[track_caller]
fn merge_blocked(env: &TestEnv, merger: &str, pr: &str, needles: &[&str]) -> Vec<String> {
    let main = main_tip(env);
    let blocked = count_events(env, "MERGE_BLOCKED");
    let out = run(env, merger, &["pr", "merge", pr]).code(1);
    let unmet = out.error().strip_prefix("merge blocked: ").unwrap_or_else(|| panic!("a merge refusal starts 'merge blocked: ':\n{out}"));
    for needle in needles {
        assert!(unmet.contains(needle), "the blocked merge should name {needle:?}:\n{out}");
    }
    assert!(out.stdout.is_empty(), "a blocked merge prints no result:\n{out}");
    assert_eq!(main_tip(env), main, "a blocked merge does not move main:\n{out}");
    assert_eq!(count_events(env, "MERGE_BLOCKED"), blocked + 1, "the blocked merge is recorded:\n{out}");
    let head = env.log_head().expect("a log");
    assert!(out.stderr.contains(&format!("hint: MERGE_BLOCKED recorded in {head}")), "{out}");
    let event = event_json(env, &head);
    assert_eq!(event["type"], "MERGE_BLOCKED");
    assert_eq!(event["actor_agent_id"], merger);
    assert_eq!(event["payload"]["pr"], pr);
    let recorded = strings(&event["payload"]["gate"]["unmet"]);
    assert_eq!(recorded.join("; "), unmet, "the event records the reasons the command printed");
    recorded
}

/// `pr merge --json` that the gate lets through: MERGE_APPROVED at the head of the log, `main`
/// at a new merge commit whose first parent is the old `main` and second the PR's head, and
/// the PR merged in the state. Returns the MERGE_APPROVED envelope.
#[track_caller]
fn merge_ok(env: &TestEnv, merger: &str, pr: &str) -> Value {
    let before = main_tip(env).expect("main exists");
    let head = str_field(&pr_show(env, pr, merger), "head").to_string();
    let out = run(env, merger, &["pr", "merge", pr, "--json"]).success().json();
    assert_eq!(out["merged"], true, "{out}");
    let result = str_field(&out, "result").to_string();
    assert_eq!(out["event"].as_str(), env.log_head().as_deref(), "{out}");
    assert_eq!(main_tip(env).as_deref(), Some(result.as_str()), "main moves to the merge result");
    assert_eq!(env.git_ok(["rev-list", "--parents", "-n", "1", &result]), format!("{result} {before} {head}"));
    let event = head_event(env);
    assert_eq!(event["type"], "MERGE_APPROVED");
    assert_eq!(event["actor_agent_id"], merger);
    assert_eq!(event["payload"]["pr"], pr);
    assert_eq!(event["payload"]["head"], head.as_str());
    assert_eq!(event["payload"]["result"], result.as_str());
    assert_eq!(event["payload"]["gate"]["unmet"], json!([]));
    let shown = pr_show(env, pr, merger);
    assert_eq!(shown["status"], "merged");
    assert_eq!(shown["merged_by"], merger);
    assert_eq!(shown["result"], result.as_str());
    event
}

// ---------------------------------------------------------------------------------------------
// Forging events with plain git

/// Append a validly signed event made with plain git: a copy of `template`'s envelope (so the
/// task and project match) with the given actor, type and payload, the next clock and a fresh
/// time; author and committer the actor; signed with the actor's real key from
/// `$CLUTCH_HOME/keys/`; `refs/clutch/log` moved onto it by compare-and-swap.
fn forge(env: &TestEnv, template: &str, actor: &str, kind: &str, payload: Value) -> String {
    forge_with(env, template, actor, kind, payload, None, |_| {})
}

/// [`forge`] at a given time (default: the harness's next tick), with a last edit of the
/// envelope (its time and clock excepted).
fn forge_with(
    env: &TestEnv,
    template: &str,
    actor: &str,
    kind: &str,
    payload: Value,
    time: Option<i64>,
    edit: impl FnOnce(&mut Value),
) -> String {
    let head = env.log_head().expect("a log");
    let clock = head_event(env)["clock"].as_u64().expect("clock");
    let time = time.unwrap_or_else(|| env.tick());
    let mut event = event_json(env, template);
    event["type"] = json!(kind);
    event["actor_agent_id"] = json!(actor);
    event["at"] = json!(rfc3339(time));
    event["clock"] = json!(clock + 1);
    event["refs"] = json!([]);
    event["cost"] = json!({"input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0,
                           "usd_micros": 0, "wall_ms": 0, "source": "none"});
    event["payload"] = payload;
    edit(&mut event);
    let mut bytes = serde_json::to_vec_pretty(&event).expect("serialize");
    bytes.push(b'\n');
    let blob = env.git_stdin(["hash-object", "-w", "--stdin"], &bytes);
    let tree = env.git_stdin(["mktree"], format!("100644 blob {blob}\tevent.json\n").as_bytes());
    let who = Ident::agent(actor, time);
    let key = env.key_file(actor);
    let commit = env.commit_tree(&tree, &[&head], &who, &who, &commit_message(&event, "forged with plain git"), Some(&key));
    env.git_ok(["update-ref", LOG_REF, &commit, &head]);
    commit
}

/// `git clutch verify` fails and lists exactly the `forged` commits, each with its reason.
#[track_caller]
fn assert_verify_lists(env: &TestEnv, forged: &[(&str, &str)]) {
    let out = env.clutch(["verify"]).code(1);
    assert_eq!(out.error(), format!("{} invalid event(s) in refs/clutch/log", forged.len()));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), forged.len() + 1, "one line per rejected event and a summary:\n{out}");
    for (commit, reason) in forged {
        let line = lines.iter().find(|l| l.starts_with(commit)).unwrap_or_else(|| panic!("{commit} is not listed:\n{out}"));
        assert!(line.contains(reason), "the reason for {commit} should mention {reason:?}:\n{out}");
    }
    let rejected: Vec<String> =
        env.state()["rejected"].as_array().expect("rejected").iter().map(|r| str_field(r, "commit").to_string()).collect();
    assert_eq!(rejected, forged.iter().map(|f| f.0.to_string()).collect::<Vec<_>>());
}

/// Signature checks by plain git, against the roster as an allowed-signers file.
fn git_verify(env: &TestEnv, commit: &str) -> CommandOutput {
    let signers = env.signers_file();
    env.git_verify_commit(&signers, commit)
}

// ---------------------------------------------------------------------------------------------
// 1. The tour

#[test]
fn tour_hire_plan_work_review_update_and_merge() {
    let env = TestEnv::with_org();
    let base = seed_main(&env);

    // HR proposes two hires; until the CEO decides, neither exists.
    let hire_sam = run(&env, "hank", &["hr", "propose-hire", "sam", "--role", "senior", "-m", "we need a reviewer"]).success();
    let hire_sam = hire_sam.out().to_string();
    let hire_jo = run(&env, "hank", &["hr", "propose-hire", "jo", "--role", "junior", "-m", "and hands"]).success().out().to_string();
    for id in [&hire_sam, &hire_jo] {
        assert!(id.starts_with("p-") && id.len() >= 9, "propose-hire prints the proposal id: {id}");
    }
    refused(&env, "sam", &["task", "new", "Sneak in", "--project", "core"], "unknown agent 'sam'");
    refused(&env, "jo", &["task", "claim", "t-0000000"], "unknown agent 'jo'");
    let decisions = env.clutch(["decision", "list", "--json"]).success().json();
    let proposals = decisions["proposals"].as_array().expect("proposals");
    assert_eq!(proposals.len(), 2);
    for p in proposals {
        assert_eq!(p["status"], "pending", "{p}");
        assert_eq!(p["by"], "hank");
        assert_eq!(p["kind"], "hire");
    }
    assert!(env.state()["agents"].get("sam").is_none(), "a proposal alone hires nobody");

    // The CEO decides.
    let decided = run(&env, "alice", &["decide", &hire_sam, "--approve", "-m", "welcome"]).success();
    assert_eq!(decided.stdout, format!("{}\nhired sam\n", env.log_head().expect("a log")));
    run(&env, "alice", &["decide", &hire_jo, "--approve", "-m", "welcome too"]).success();
    let decisions = env.clutch(["decision", "list", "--json"]).success().json();
    assert!(decisions["proposals"].as_array().expect("proposals").iter().all(|p| p["status"] == "approved"), "{decisions}");
    assert_eq!(decisions["decisions"].as_array().map(Vec::len), Some(2));
    let state = env.state();
    assert_eq!(state["agents"]["sam"]["role"], "senior");
    assert_eq!(state["agents"]["sam"]["status"], "active");
    assert_eq!(state["agents"]["jo"]["role"], "junior");

    // The senior plans and assigns.
    let task = env.new_task("sam", "Greet the user", &["--project", "core"]);
    assert_eq!(run(&env, "sam", &["task", "assign", &task, "jo"]).success().out(), format!("{task} assigned to jo"));

    // The junior works on a branch, runs the tests, and opens a PR.
    let head1 = commit_on(&env, "jo/greet", "greet.txt", "hi\n");
    let tested = run(&env, "jo", &["test", "run", "--task", &task, "--", "true"]).success();
    assert_eq!(Some(tested.out().to_string()), env.log_head());
    let test_event = head_event(&env);
    assert_eq!(test_event["type"], "TEST_RUN");
    assert_eq!(test_event["task"], task.as_str());
    assert_eq!(test_event["payload"]["commit"], head1.as_str());
    assert_eq!(test_event["payload"]["passed"], true);
    assert_eq!(test_event["payload"]["command"], json!(["true"]));
    let pr = run(&env, "jo", &["pr", "open", "--task", &task]).success().out().to_string();
    assert!(pr.starts_with("pr-"), "{pr}");
    let shown = pr_show(&env, &pr, "sam");
    assert_eq!(shown["author"], "jo");
    assert_eq!(shown["head_branch"], "jo/greet", "the head branch defaults to the current branch");
    assert_eq!(shown["base"], "main");
    assert_eq!(shown["head"], head1.as_str());
    assert_eq!(shown["title"], "Greet the user");
    assert_eq!(shown["status"], "open");
    assert_eq!(shown["test_runs"].as_array().map(Vec::len), Some(1));
    assert_eq!(env.clutch(["pr", "list", "--json"]).success().json().as_array().map(Vec::len), Some(1));

    // bob approves, but sam requests changes: the merge is blocked on sam's verdict.
    run(&env, "bob", &["pr", "review", &pr, "--approve", "-m", "fine by me"]).success();
    run(&env, "sam", &["pr", "review", &pr, "--request-changes", "-m", "say hello properly"]).success();
    let review = head_event(&env);
    assert_eq!(review["type"], "REVIEW_COMMENTED");
    assert_eq!(review["payload"]["head"], head1.as_str(), "a review binds to the head it saw");
    assert_eq!(review["payload"]["verdict"], "request_changes");
    let unmet = merge_blocked(&env, "sam", &pr, &[&format!("sam requested changes on head {}", short(&head1))]);
    assert_eq!(unmet.len(), 1, "bob's approval counts on this head: {unmet:?}");

    // The junior commits more and records the new head.
    let head2 = commit_on(&env, "jo/greet", "greet.txt", "hello\n");
    assert_eq!(run(&env, "jo", &["pr", "update", &pr]).success().out(), format!("{pr} updated to a new head"));
    assert_eq!(head_event(&env)["type"], "PR_UPDATED");
    assert_eq!(run(&env, "jo", &["pr", "update", &pr]).success().out(), "Nothing changed.");
    let shown = pr_show(&env, &pr, "sam");
    assert_eq!(shown["head"], head2.as_str());
    assert_eq!(strings(&shown["heads"]), vec![head1.clone(), head2.clone()]);
    assert_eq!(shown["reviews"].as_array().map(Vec::len), Some(2), "the old reviews are kept");
    // Neither bob's approval nor sam's objection counts any more: both were on head1.
    assert_eq!(shown["gate"]["approvals"], json!([]));
    assert_eq!(
        strings(&shown["gate"]["unmet"]),
        vec![format!("needs 1 senior approval(s) on head {}, has 0 (stale: approval by bob is on an older head)", short(&head2))]
    );
    merge_blocked(&env, "sam", &pr, &["stale: approval by bob is on an older head"]);

    // Tests on the new head, sam approves it, and merges.
    run(&env, "jo", &["test", "run", "--pr", &pr, "--", "true"]).success();
    assert_eq!(head_event(&env)["payload"]["commit"], head2.as_str());
    assert_eq!(head_event(&env)["payload"]["pr"], pr.as_str());
    run(&env, "sam", &["pr", "review", &pr, "--approve", "-m", "ship it"]).success();
    let shown = pr_show(&env, &pr, "sam");
    assert_eq!(shown["gate"]["unmet"], json!([]));
    assert_eq!(shown["gate"]["approvals"], json!(["sam"]));
    let approved = merge_ok(&env, "sam", &pr);
    assert_eq!(approved["payload"]["gate"]["approvals"], json!(["sam"]));
    assert_eq!(approved["payload"]["gate"]["required_approvals"], 1);
    assert_eq!(approved["task"], task.as_str());

    // main is a merge commit, signed by sam, that plain git verifies with the roster.
    let main = main_tip(&env).expect("main exists");
    assert_ne!(main, base);
    assert_eq!(env.git_ok(["rev-list", "--parents", "-n", "1", "main"]), format!("{main} {base} {head2}"));
    assert_eq!(env.git_ok(["show", "main:greet.txt"]), "hello");
    assert_eq!(env.git_ok(["log", "-1", "--format=%an <%ae>|%cn <%ce>", "main"]), "sam <sam@clutch.invalid>|sam <sam@clutch.invalid>");
    let message = env.git_ok(["log", "-1", "--format=%B", "main"]);
    assert!(message.contains(&format!("Clutch-PR: {pr}")) && message.contains(&format!("Clutch-Task: {task}")), "{message}");
    let verified = git_verify(&env, "main").success();
    assert!(verified.stderr.contains("Good \"git\" signature for sam@clutch.invalid"), "{verified}");

    // The task is done, and the whole log verifies.
    let state = env.state();
    assert_eq!(state["tasks"][&task]["status"], "done");
    assert!(state["tasks"][&task]["done_at"].is_string());
    assert_eq!(state["governance"]["prs"][&pr]["status"], "merged");
    assert_eq!(state["governance"]["prs"][&pr]["blocked"], 2);
    env.clutch(["verify"]).success();
    git_verify(&env, LOG_REF).success();
    refused(&env, "sam", &["pr", "review", &pr, "--approve"], "already merged");
}

// ---------------------------------------------------------------------------------------------
// 2. Each gate both ways

#[test]
fn self_approval_is_refused_at_review() {
    let env = TestEnv::with_org();
    seed_main(&env);
    let (_, pr, _) = junior_pr(&env, "jill", "self");
    refused(
        &env,
        "jill",
        &["pr", "review", &pr, "--approve", "-m", "looks great"],
        &format!("nobody approves or rejects their own PR (jill opened {pr})"),
    );
    refused(&env, "jill", &["pr", "review", &pr, "--request-changes", "-m", "hmm"], "nobody approves or rejects their own PR");
    // Commenting on one's own PR is fine, and is not a verdict.
    run(&env, "jill", &["pr", "review", &pr, "--comment", "-m", "ready for review"]).success();
    assert_eq!(head_event(&env)["payload"]["verdict"], "comment");
    merge_blocked(&env, "bob", &pr, &["needs 1 senior approval(s)", "has 0"]);

    // A senior's own PR: no self-approval, no self-merge; another lead may merge it.
    let task = env.new_task("bob", "Senior's own work", &["--project", "core"]);
    commit_on(&env, "bob-work", "bob.txt", "by bob\n");
    let own = run(&env, "bob", &["pr", "open", "--task", &task, "--head", "bob-work"]).success().out().to_string();
    refused(
        &env,
        "bob",
        &["pr", "review", &own, "--approve", "-m", "mine"],
        &format!("nobody approves or rejects their own PR (bob opened {own})"),
    );
    merge_blocked(&env, "bob", &own, &[&format!("nobody merges their own PR (bob opened {own})")]);
    merge_ok(&env, "alice", &own);

    // The other way: a senior approves jill's PR and it merges.
    run(&env, "bob", &["pr", "review", &pr, "--approve"]).success();
    merge_ok(&env, "bob", &pr);
}

#[test]
fn junior_approval_is_a_comment_and_does_not_count() {
    let env = TestEnv::with_org();
    seed_main(&env);
    let (_, pr, head) = junior_pr(&env, "jill", "junior-approval");
    let out = run(&env, "kim", &["pr", "review", &pr, "--approve", "-m", "lgtm"]).success();
    assert!(out.stderr.contains("a junior's verdict does not count toward the merge gate; recorded as a comment"), "{out}");
    let review = head_event(&env);
    assert_eq!(review["actor_agent_id"], "kim");
    assert_eq!(review["payload"]["verdict"], "comment", "a junior's approval is recorded as a comment");
    let shown = pr_show(&env, &pr, "bob");
    assert_eq!(shown["reviews"][0]["verdict"], "comment");
    assert_eq!(shown["reviews"][0]["role"], "junior");
    assert_eq!(shown["gate"]["approvals"], json!([]));
    merge_blocked(&env, "bob", &pr, &[&format!("needs 1 senior approval(s) on head {}, has 0", short(&head))]);

    run(&env, "bob", &["pr", "review", &pr, "--approve", "-m", "lgtm"]).success();
    let approved = merge_ok(&env, "bob", &pr);
    assert_eq!(approved["payload"]["gate"]["approvals"], json!(["bob"]));
}

#[test]
fn juniors_may_not_merge() {
    let env = TestEnv::with_org();
    seed_main(&env);
    let (task, pr, _) = junior_pr(&env, "jill", "junior-merge");
    // A junior works only tasks assigned to it.
    env.git_ok(["branch", "kim-take", "junior-merge"]);
    refused(
        &env,
        "kim",
        &["pr", "open", "--task", &task, "--head", "kim-take", "--title", "mine now"],
        "junior 'kim' may only open PRs for tasks assigned to it",
    );
    commit_on(&env, "junior-merge", "junior-merge.txt", "second draft\n");
    refused(&env, "kim", &["pr", "update", &pr], "only the author or a senior may update");
    run(&env, "jill", &["pr", "update", &pr]).success();
    run(&env, "bob", &["pr", "review", &pr, "--approve", "-m", "ok"]).success();
    let unmet = merge_blocked(&env, "kim", &pr, &["junior 'kim' may not merge (that takes senior or ceo)"]);
    assert_eq!(unmet.len(), 1, "everything else holds: {unmet:?}");
    merge_blocked(&env, "jill", &pr, &["junior 'jill' may not merge", &format!("nobody merges their own PR (jill opened {pr})")]);
    merge_blocked(&env, "hank", &pr, &["hr 'hank' may not merge"]);
    assert_eq!(env.state()["governance"]["prs"][&pr]["blocked"], 3);
    merge_ok(&env, "bob", &pr);
}

#[test]
fn merge_without_approval_is_blocked() {
    let env = TestEnv::with_org();
    seed_main(&env);
    let (task, pr, head) = junior_pr(&env, "jill", "no-approval");
    let needle = format!("needs 1 senior approval(s) on head {}, has 0", short(&head));
    assert_eq!(merge_blocked(&env, "bob", &pr, &[&needle]), vec![needle.clone()]);
    assert_eq!(merge_blocked(&env, "alice", &pr, &[&needle]), vec![needle.clone()], "the CEO too needs an approval on a junior's PR");
    assert_eq!(env.state()["tasks"][&task]["status"], "assigned", "a blocked merge does not deliver the task");
    // The CEO's approval counts like a senior's.
    run(&env, "alice", &["pr", "review", &pr, "--approve", "-m", "go"]).success();
    merge_ok(&env, "bob", &pr);
    assert_eq!(env.state()["tasks"][&task]["status"], "done");
    // Merging it again is one more blocked attempt, and main stays at the first merge.
    merge_blocked(&env, "bob", &pr, &[&format!("{pr} is already merged")]);
}

/// `pr merge` with the base branch checked out in a clean work tree brings the work tree and
/// index along (`follow_checked_out`), so that `git status` stays clean and a later commit on
/// `main` does not undo the merge.
#[test]
fn merge_with_the_base_checked_out_updates_the_work_tree() {
    let env = TestEnv::with_org();
    seed_main(&env);
    let (_, pr, _) = junior_pr(&env, "jill", "checked-out");
    run(&env, "bob", &["pr", "review", &pr, "--approve", "-m", "go"]).success();
    env.git_ok(["checkout", "-q", "main"]);
    assert_eq!(env.git_ok(["status", "--porcelain"]), "", "a clean work tree on main");
    let out = run(&env, "bob", &["pr", "merge", &pr]).success();
    assert_eq!(main_tip(&env).as_deref(), Some(out.out()));
    assert!(out.stderr.contains("(work tree updated)"), "{out}");
    assert_eq!(env.git_ok(["status", "--porcelain"]), "", "the index and work tree follow main");
    assert_eq!(std::fs::read_to_string(env.repo.join("checked-out.txt")).expect("the merged file is in the work tree"), "first draft\n");
}

#[test]
fn approval_on_a_stale_head_does_not_count() {
    let env = TestEnv::with_org();
    seed_main(&env);
    let (_, pr, head1) = junior_pr(&env, "jill", "stale");
    run(&env, "bob", &["pr", "review", &pr, "--approve", "-m", "ok"]).success();
    assert_eq!(pr_show(&env, &pr, "bob")["gate"]["unmet"], json!([]));

    let head2 = commit_on(&env, "stale", "stale.txt", "second draft\n");
    run(&env, "jill", &["pr", "update", &pr]).success();
    let shown = pr_show(&env, &pr, "bob");
    assert_eq!(shown["reviews"][0]["head"], head1.as_str());
    assert_eq!(shown["gate"]["approvals"], json!([]));
    merge_blocked(
        &env,
        "bob",
        &pr,
        &[&format!("needs 1 senior approval(s) on head {}, has 0 (stale: approval by bob is on an older head)", short(&head2))],
    );

    // Approving the new head counts; but a branch that moved on without `pr update` blocks.
    run(&env, "bob", &["pr", "review", &pr, "--approve", "-m", "ok again"]).success();
    assert_eq!(head_event(&env)["payload"]["head"], head2.as_str());
    let head3 = commit_on(&env, "stale", "stale.txt", "third draft\n");
    merge_blocked(
        &env,
        "bob",
        &pr,
        &[&format!("branch stale has moved past the PR's head {}: run `git clutch pr update {pr}`", short(&head2))],
    );
    run(&env, "jill", &["pr", "update", &pr]).success();
    merge_blocked(&env, "bob", &pr, &[&format!("on head {}, has 0 (stale: approval by bob is on an older head)", short(&head3))]);
    run(&env, "bob", &["pr", "review", &pr, "--approve"]).success();
    merge_ok(&env, "bob", &pr);
    assert_eq!(env.git_ok(["show", "main:stale.txt"]), "third draft");
}

#[test]
fn failing_or_missing_tests_block_when_policy_requires_them() {
    let env = TestEnv::with_org();
    seed_main(&env);
    let (_, pr, head) = junior_pr(&env, "jill", "tested");
    run(&env, "alice", &["decide", "--policy", "require_tests=true", "-m", "tests first"]).success();
    let policy = env.clutch(["decision", "list", "--json"]).success().json()["policy"].clone();
    assert_eq!(policy["require_tests"], true);
    assert_eq!(policy["required_approvals"], 1);
    run(&env, "bob", &["pr", "review", &pr, "--approve", "-m", "ok"]).success();

    // Missing.
    assert_eq!(
        merge_blocked(&env, "bob", &pr, &[&format!("no TEST_RUN on head {} (policy require_tests)", short(&head))]).len(),
        1,
        "the approval holds; only the tests are missing"
    );

    // Failing: `test run` exits with the command's status and still records the run.
    let before = env.log_head();
    let failed = run(&env, "jill", &["test", "run", "--pr", &pr, "--", "false"]).code(1);
    assert!(failed.stderr.contains("tests failed on"), "{failed}");
    assert_ne!(env.log_head(), before);
    let run_event = head_event(&env);
    assert_eq!(run_event["type"], "TEST_RUN");
    assert_eq!(run_event["payload"]["passed"], false);
    assert_eq!(run_event["payload"]["exit_code"], 1);
    assert_eq!(run_event["payload"]["commit"], head.as_str());
    merge_blocked(&env, "bob", &pr, &[&format!("the latest TEST_RUN on head {} failed", short(&head))]);
    let exit3 = run(&env, "jill", &["test", "run", "--pr", &pr, "--", "sh", "-c", "exit 3"]).code(3);
    assert!(exit3.stderr.contains("tests failed on"), "{exit3}");

    // A pass, then a later failure: the latest run decides.
    run(&env, "jill", &["test", "run", "--pr", &pr, "--", "true"]).success();
    run(&env, "jill", &["test", "run", "--pr", &pr, "--", "false"]).code(1);
    merge_blocked(&env, "bob", &pr, &["failed"]);

    // Passing.
    let passed = run(&env, "jill", &["test", "run", "--pr", &pr, "--json", "--", "true"]).success().json();
    assert_eq!(passed["passed"], true);
    assert_eq!(passed["commit"], head.as_str());
    assert_eq!(env.git_ok(["worktree", "list"]).lines().count(), 1, "test run --pr cleans up its checkout");
    let approved = merge_ok(&env, "bob", &pr);
    assert_eq!(approved["payload"]["gate"]["require_tests"], true);
    assert_eq!(approved["payload"]["gate"]["test_run"], passed["event"], "the gate names the passing run");
}

#[test]
fn with_tests_by_reviewers_the_authors_own_test_run_does_not_count() {
    // A TEST_RUN says what its signer saw. With tests_by=reviewers the gate takes only the word
    // of a Senior or the CEO who is not the PR's author: a Junior cannot vouch for its own head.
    let env = TestEnv::with_org();
    seed_main(&env);
    let (_, pr, head) = junior_pr(&env, "jill", "vouched");
    refused(&env, "alice", &["decide", "--policy", "tests_by=me", "-m", "x"], "policy tests_by cannot be 'me' (anyone or reviewers)");
    run(&env, "alice", &["decide", "--policy", "require_tests=true", "--policy", "tests_by=reviewers", "-m", "independent tests"])
        .success();
    assert_eq!(env.clutch(["decision", "list", "--json"]).success().json()["policy"]["tests_by"], "reviewers");
    run(&env, "bob", &["pr", "review", &pr, "--approve", "-m", "ok"]).success();
    merge_blocked(
        &env,
        "bob",
        &pr,
        &[&format!("no TEST_RUN on head {} by a senior or the ceo other than jill (policy tests_by=reviewers)", short(&head))],
    );

    run(&env, "jill", &["test", "run", "--pr", &pr, "--", "true"]).success();
    merge_blocked(&env, "bob", &pr, &["by a senior or the ceo other than jill", "jill's own does not count"]);
    // Another Junior's word does not count either.
    run(&env, "kim", &["test", "run", "--pr", &pr, "--", "true"]).success();
    merge_blocked(&env, "bob", &pr, &["by a senior or the ceo other than jill"]);

    // The reviewer's run counts; a failing one of the author's after it changes nothing.
    let passed = run(&env, "bob", &["test", "run", "--pr", &pr, "--json", "--", "true"]).success().json();
    run(&env, "jill", &["test", "run", "--pr", &pr, "--", "false"]).code(1);
    let approved = merge_ok(&env, "bob", &pr);
    assert_eq!(approved["payload"]["gate"]["test_run"], passed["event"], "the gate names the reviewer's run");

    // The CEO's word counts; a Senior who pushed a head of the PR is not independent of it.
    let (_, pr3, _) = junior_pr(&env, "jill", "pushed");
    commit_on(&env, "pushed", "pushed.txt", "a senior's fix\n");
    run(&env, "bob", &["pr", "update", &pr3]).success();
    run(&env, "alice", &["pr", "review", &pr3, "--approve", "-m", "ok"]).success();
    run(&env, "bob", &["test", "run", "--pr", &pr3, "--", "true"]).success();
    merge_blocked(&env, "alice", &pr3, &["by a senior or the ceo other than jill or bob (policy tests_by=reviewers)"]);
    run(&env, "alice", &["test", "run", "--pr", &pr3, "--", "true"]).success();
    merge_ok(&env, "alice", &pr3);

    // Back to anyone: the author's latest word counts again.
    let (_, pr2, _) = junior_pr(&env, "jill", "trusted");
    run(&env, "alice", &["decide", "--policy", "tests_by=anyone", "-m", "we trust our juniors"]).success();
    run(&env, "bob", &["pr", "review", &pr2, "--approve", "-m", "ok"]).success();
    run(&env, "jill", &["test", "run", "--pr", &pr2, "--", "true"]).success();
    merge_ok(&env, "bob", &pr2);
}

#[test]
fn two_approvals_when_the_policy_asks_for_two() {
    let env = TestEnv::with_org();
    seed_main(&env);
    env.clutch(["agent", "add", "sue", "--role", "senior"]).success();
    run(&env, "alice", &["decide", "--policy", "required_approvals=2", "-m", "four eyes"]).success();
    assert_eq!(env.state()["governance"]["policy"]["required_approvals"], 2);
    let (_, pr, head) = junior_pr(&env, "jill", "two");
    merge_blocked(&env, "bob", &pr, &[&format!("needs 2 senior approval(s) on head {}, has 0", short(&head))]);
    run(&env, "bob", &["pr", "review", &pr, "--approve", "-m", "one"]).success();
    merge_blocked(&env, "bob", &pr, &["needs 2 senior approval(s)", "has 1"]);
    run(&env, "kim", &["pr", "review", &pr, "--approve", "-m", "me too"]).success();
    merge_blocked(&env, "bob", &pr, &["has 1"]);
    run(&env, "bob", &["pr", "review", &pr, "--approve", "-m", "twice is still one"]).success();
    merge_blocked(&env, "bob", &pr, &["has 1"]);
    run(&env, "sue", &["pr", "review", &pr, "--approve", "-m", "two"]).success();
    let approved = merge_ok(&env, "bob", &pr);
    assert_eq!(approved["payload"]["gate"]["approvals"], json!(["bob", "sue"]));
    assert_eq!(approved["payload"]["gate"]["required_approvals"], 2);
    // The policy is checked when set.
    refused(&env, "alice", &["decide", "--policy", "required_approvals=11", "-m", "too many"], "required_approvals cannot be '11'");
    refused(&env, "alice", &["decide", "--policy", "no_such_knob=1", "-m", "?"], "unknown policy 'no_such_knob'");
}

#[test]
fn fired_agent_may_no_longer_act() {
    let env = TestEnv::with_org();
    seed_main(&env);
    env.clutch(["agent", "add", "sue", "--role", "senior"]).success();
    let (_, pr, _) = junior_pr(&env, "jill", "fired");
    refused(&env, "bob", &["hr", "propose-fire", "kim", "-m", "no"], "senior 'bob' may not propose firings");
    refused(&env, "hank", &["hr", "propose-fire", "hank", "-m", "I quit"], "nobody proposes to fire themselves");

    let fire_kim = run(&env, "hank", &["hr", "propose-fire", "kim", "-m", "missed deadlines"]).success().out().to_string();
    let fire_sue = run(&env, "hank", &["hr", "propose-fire", "sue", "-m", "budget cuts"]).success().out().to_string();
    // Before the decision both still act.
    run(&env, "kim", &["pr", "review", &pr, "--comment", "-m", "still here"]).success();
    run(&env, "sue", &["pr", "review", &pr, "--approve", "-m", "fine"]).success();
    assert_eq!(pr_show(&env, &pr, "bob")["gate"]["approvals"], json!(["sue"]));
    refused(&env, "bob", &["decide", &fire_kim, "--approve", "-m", "yes"], "senior 'bob' may not record decisions (that takes ceo)");
    refused(&env, "hank", &["decide", &fire_kim, "--approve", "-m", "yes"], "hr 'hank' may not record decisions (that takes ceo)");
    run(&env, "kim", &["test", "run", "--", "true"]).success();

    run(&env, "alice", &["decide", &fire_kim, "--approve", "-m", "agreed"]).success();
    run(&env, "alice", &["decide", &fire_sue, "--approve", "-m", "agreed"]).success();
    let state = env.state();
    assert_eq!(state["agents"]["kim"]["status"], "fired");
    assert_eq!(state["agents"]["sue"]["status"], "fired");
    let fired = "was fired and may no longer act";
    refused(&env, "kim", &["pr", "review", &pr, "--comment", "-m", "gone"], &format!("agent 'kim' {fired}"));
    refused(&env, "kim", &["test", "run", "--", "true"], &format!("agent 'kim' {fired}"));
    refused(&env, "sue", &["pr", "review", &pr, "--approve", "-m", "again"], &format!("agent 'sue' {fired}"));
    refused(&env, "sue", &["pr", "merge", &pr], &format!("agent 'sue' {fired}"));
    // A fired senior's earlier approval no longer counts.
    assert_eq!(pr_show(&env, &pr, "bob")["gate"]["approvals"], json!([]));
    merge_blocked(&env, "bob", &pr, &["needs 1 senior approval(s)", "has 0"]);
    refused(&env, "alice", &["decide", &fire_kim, "--approve", "-m", "again"], "was already approved");
    env.clutch(["verify"]).success();

    // A rejected firing changes nothing.
    let fire_bob = run(&env, "hank", &["hr", "propose-fire", "bob", "-m", "?"]).success().out().to_string();
    run(&env, "alice", &["decide", &fire_bob, "--reject", "-m", "no"]).success();
    assert_eq!(env.state()["agents"]["bob"]["status"], "active");
    run(&env, "bob", &["pr", "review", &pr, "--approve", "-m", "still here"]).success();
    merge_ok(&env, "bob", &pr);
}

#[test]
fn hire_takes_effect_only_with_the_ceos_decision() {
    let env = TestEnv::with_org();
    refused(&env, "bob", &["hr", "propose-hire", "sam", "--role", "senior", "-m", "friend"], "senior 'bob' may not propose hires");
    refused(&env, "hank", &["agent", "add", "sam", "--role", "senior"], "may not add agents");
    let hire = run(&env, "hank", &["hr", "propose-hire", "sam", "--role", "senior", "-m", "strong reviewer"]).success().out().to_string();
    refused(&env, "sam", &["task", "new", "Hello", "--project", "core"], "unknown agent 'sam'");
    refused(&env, "bob", &["decide", &hire, "--approve", "-m", "yes"], "senior 'bob' may not record decisions (that takes ceo)");
    refused(&env, "hank", &["decide", &hire, "--approve", "-m", "yes"], "hr 'hank' may not record decisions (that takes ceo)");
    refused(&env, "jill", &["decide", &hire, "--approve", "-m", "yes"], "junior 'jill' may not record decisions");
    refused(&env, "sam", &["task", "new", "Hello", "--project", "core"], "unknown agent 'sam'");

    run(&env, "alice", &["decide", &hire, "--reject", "-m", "not now"]).success();
    refused(&env, "sam", &["task", "new", "Hello", "--project", "core"], "unknown agent 'sam'");
    let decisions = env.clutch(["decision", "list", "--json"]).success().json();
    assert_eq!(decisions["proposals"][0]["status"], "rejected");
    assert_eq!(decisions["proposals"][0]["decision"].as_str(), env.log_head().as_deref());
    refused(&env, "alice", &["decide", &hire, "--approve", "-m", "changed my mind"], "was already rejected");

    // Proposed again and approved: now sam acts.
    let again = run(&env, "hank", &["hr", "propose-hire", "sam", "--role", "senior", "-m", "now"]).success().out().to_string();
    run(&env, "alice", &["decide", &again, "--approve", "-m", "yes"]).success();
    env.new_task("sam", "Hello", &["--project", "core"]);
    assert_eq!(env.state()["agents"]["sam"]["joined_by"].as_str().map(str::len), Some(40));
    refused(&env, "hank", &["hr", "propose-hire", "sam", "--role", "junior", "-m", "twice"], "agent 'sam' already exists");
    env.clutch(["verify"]).success();
}

#[test]
fn only_the_ceo_decides_policy_and_sets_budgets() {
    let env = TestEnv::with_org();
    for (agent, role) in [("bob", "senior"), ("hank", "hr"), ("jill", "junior")] {
        refused(
            &env,
            agent,
            &["decide", "--policy", "required_approvals=0", "-m", "faster"],
            &format!("{role} '{agent}' may not record decisions (that takes ceo)"),
        );
        refused(
            &env,
            agent,
            &["budget", "set", "--scope", "org", "--usd", "1000"],
            &format!("{role} '{agent}' may not set budgets (that takes ceo)"),
        );
    }
    assert_eq!(env.state()["governance"]["policy"]["required_approvals"], 1);
    assert_eq!(env.clutch(["budget", "show", "--json"]).success().json(), json!([]));

    // The CEO may; a budget's remaining figure follows the spend recorded on events.
    seed_main(&env);
    refused(&env, "alice", &["budget", "set", "--scope", "project:nope", "--usd", "1"], "names nothing in the org");
    run(&env, "alice", &["budget", "set", "--scope", "agent:jill", "--usd", "1", "--tokens", "1000"]).success();
    assert_eq!(head_event(&env)["type"], "BUDGET_UPDATED");
    let remaining = env.clutch(["budget", "remaining", "--scope", "agent:jill", "--json"]).success().json();
    assert_eq!(remaining["remaining_usd_micros"], 1_000_000);
    assert_eq!(remaining["exhausted"], false);
    run(&env, "jill", &["test", "run", "--cost-usd", "0.6", "--tokens-in", "300", "--tokens-out", "100", "--", "true"]).success();
    let remaining = env.clutch(["budget", "remaining", "--scope", "agent:jill", "--json"]).success().json();
    assert_eq!(remaining["remaining_usd_micros"], 400_000);
    assert_eq!(remaining["remaining_tokens"], 600);
    run(&env, "jill", &["test", "run", "--cost-usd", "0.5", "--", "true"]).success();
    let out = env.clutch(["budget", "remaining", "--scope", "agent:jill"]).code(1);
    assert_eq!(out.error(), "the budget of agent:jill is exhausted");
    assert!(out.stdout.contains("-$0.10 (over)"), "{out}");
    let shown = env.clutch(["budget", "show", "--json"]).success().json();
    assert_eq!(shown[0]["scope"], "agent:jill");
    assert_eq!(shown[0]["spent_usd_micros"], 1_100_000);
    assert_eq!(shown[0]["exhausted"], true);
}

/// `pr show` says it evaluates the gate for "the acting agent" by default; `--as` names the
/// acting agent everywhere else.
#[test]
fn pr_show_evaluates_the_gate_for_the_acting_agent() {
    let env = TestEnv::with_org();
    seed_main(&env);
    let (_, pr, _) = junior_pr(&env, "jill", "show");
    run(&env, "bob", &["pr", "review", &pr, "--approve"]).success();
    let mut cmd = env.command(CLUTCH);
    cmd.env("CLUTCH_ACTOR", "kim").args(["pr", "show", &pr, "--json"]);
    let by_env: Value = serde_json::from_slice(&cmd.output().expect("run").stdout).expect("JSON");
    assert_eq!(by_env["gate_for"], "kim", "CLUTCH_ACTOR names the acting agent");
    let shown = run(&env, "jill", &["pr", "show", &pr, "--json"]).success().json();
    assert_eq!(shown["gate_for"], "jill", "--as names the acting agent: {shown}");
    assert!(strings(&shown["gate"]["unmet"]).iter().any(|u| u.contains("junior 'jill' may not merge")), "{shown}");
}

/// `test run` without `--pr` runs in the work tree but records the run against `HEAD`. With
/// uncommitted changes in the tree, a pass says nothing about `HEAD`: it must not satisfy
/// `require_tests` for a head whose own content fails the same command.
#[test]
fn a_test_run_in_a_dirty_work_tree_does_not_vouch_for_head() {
    let env = TestEnv::with_org();
    seed_main(&env);
    let (task, pr, head) = junior_pr(&env, "jill", "dirty");
    run(&env, "alice", &["decide", "--policy", "require_tests=true", "-m", "tests first"]).success();
    run(&env, "bob", &["pr", "review", &pr, "--approve"]).success();
    // The committed head fails the check …
    run(&env, "jill", &["test", "run", "--pr", &pr, "--", "grep", "-q", "fixed", "dirty.txt"]).code(1);
    merge_blocked(&env, "bob", &pr, &[&format!("the latest TEST_RUN on head {} failed", short(&head))]);
    // … the fix is only in the work tree, not committed …
    std::fs::write(env.repo.join("dirty.txt"), "fixed\n").expect("edit the work tree");
    assert_eq!(env.git_ok(["rev-parse", "HEAD"]), head);
    let _ = run(&env, "jill", &["test", "run", "--task", &task, "--", "grep", "-q", "fixed", "dirty.txt"]);
    // … so the head is still untested (or failing), and the merge stays blocked.
    merge_blocked(&env, "bob", &pr, &["TEST_RUN"]);
    assert_ne!(env.git(["show", "main:dirty.txt"]).stdout, "first draft\n", "the failing head must not reach main");
}

// ---------------------------------------------------------------------------------------------
// 3. Validly signed events, forged with plain git, that break a gate

#[test]
fn forged_merge_approvals_are_rejected() {
    let env = TestEnv::with_org();
    let base = seed_main(&env);
    let (task, pr, head) = junior_pr(&env, "jill", "forged-merge");
    merge_blocked(&env, "bob", &pr, &["has 0"]);
    let blocked = env.log_head().expect("a log");

    // A merge result made with plain git, signed by bob, that the forger would like main to be.
    let tree = env.git_ok(["merge-tree", "--write-tree", "main", "forged-merge"]);
    let who = Ident::agent("bob", env.now());
    let result = env.commit_tree(&tree, &[&base, &head], &who, &who, "Merge\n", Some(&env.key_file("bob")));
    let gate = |required: u32, approvals: &[&str]| json!({"required_approvals": required, "approvals": approvals, "require_tests": false, "test_run": null, "unmet": []});
    let payload = |gate: Value| json!({"pr": pr, "head": head, "gate": gate, "result": result});

    // bob approves a merge nobody reviewed.
    let no_review = forge(&env, &blocked, "bob", "MERGE_APPROVED", payload(gate(1, &["bob"])));
    assert!(git_verify(&env, &no_review).success().stderr.contains("Good \"git\" signature for bob@clutch.invalid"));
    // After a real approval: a junior records the merge; bob records it with a gate that lies.
    run(&env, "bob", &["pr", "review", &pr, "--approve", "-m", "ok"]).success();
    let by_junior = forge(&env, &blocked, "kim", "MERGE_APPROVED", payload(gate(1, &["bob"])));
    let lying = forge(&env, &blocked, "bob", "MERGE_APPROVED", payload(gate(0, &[])));
    git_verify(&env, &by_junior).success();
    git_verify(&env, &lying).success();

    assert_verify_lists(
        &env,
        &[
            (&no_review, &format!("merge gate of {pr} does not hold: needs 1 senior approval(s) on head {}, has 0", short(&head))),
            (&by_junior, "junior 'kim' may not merge"),
            (&lying, &format!("the gate recorded for {pr} is not the gate the log gives")),
        ],
    );
    let log = log_entries(&env);
    for forged in [&no_review, &by_junior, &lying] {
        let entry = log.iter().find(|e| e["commit"] == forged.as_str()).expect("listed in log");
        assert_eq!(entry["valid"], false, "{entry}");
    }
    let state = env.state();
    assert_eq!(state["governance"]["prs"][&pr]["status"], "open");
    assert_eq!(state["governance"]["prs"][&pr]["merged_by"], Value::Null);
    assert_eq!(state["governance"]["prs"][&pr]["result"], Value::Null);
    assert_eq!(state["tasks"][&task]["status"], "assigned", "no forged merge delivers the task");
    assert_eq!(main_tip(&env).as_deref(), Some(base.as_str()));

    // The real merge still goes through on top of the forgeries.
    merge_ok(&env, "bob", &pr);
    assert_eq!(env.state()["tasks"][&task]["status"], "done");
    assert_eq!(env.clutch(["verify", "--json"]).code(1).json()["rejected"].as_array().map(Vec::len), Some(3));
}

#[test]
fn forged_merge_counting_the_authors_own_tests_is_rejected() {
    // Under tests_by=reviewers, a merge whose gate leans on the author's own TEST_RUN is
    // refused at replay, as it would be at write time and by the server's hook.
    let env = TestEnv::with_org();
    let base = seed_main(&env);
    let (task, pr, head) = junior_pr(&env, "jill", "self-tested");
    run(&env, "alice", &["decide", "--policy", "require_tests=true", "--policy", "tests_by=reviewers", "-m", "independent tests"])
        .success();
    run(&env, "bob", &["pr", "review", &pr, "--approve", "-m", "ok"]).success();
    let own = run(&env, "jill", &["test", "run", "--pr", &pr, "--json", "--", "true"]).success().json();
    let before = env.log_head().expect("a log");
    let tree = env.git_ok(["merge-tree", "--write-tree", "main", "self-tested"]);
    let who = Ident::agent("bob", env.now());
    let result = env.commit_tree(&tree, &[&base, &head], &who, &who, "Merge\n", Some(&env.key_file("bob")));
    let gate = json!({"required_approvals": 1, "approvals": ["bob"], "require_tests": true, "test_run": own["event"], "unmet": []});
    let forged = forge(&env, &before, "bob", "MERGE_APPROVED", json!({"pr": pr, "head": head, "gate": gate, "result": result}));
    git_verify(&env, &forged).success();
    assert_verify_lists(
        &env,
        &[(
            &forged,
            &format!(
                "merge gate of {pr} does not hold: no TEST_RUN on head {} by a senior or the ceo other than jill (policy tests_by=reviewers; jill's own does not count)",
                short(&head)
            ),
        )],
    );
    assert_eq!(env.state()["tasks"][&task]["status"], "assigned", "the forged merge delivers nothing");
}

#[test]
fn forged_self_and_junior_approvals_are_rejected() {
    let env = TestEnv::with_org();
    seed_main(&env);
    let (_, pr, head) = junior_pr(&env, "jill", "forged-review");
    let opened = env.log_head().expect("a log");
    let approve = |body: &str| json!({"pr": pr, "head": head, "verdict": "approve", "body": body});
    let own = forge(&env, &opened, "jill", "REVIEW_COMMENTED", approve("I approve of myself"));
    let junior = forge(&env, &opened, "kim", "REVIEW_COMMENTED", approve("a junior's verdict"));
    git_verify(&env, &own).success();
    git_verify(&env, &junior).success();
    assert_verify_lists(
        &env,
        &[
            (&own, &format!("nobody reviews their own PR with a verdict (jill opened {pr})")),
            (&junior, "junior 'kim' may only comment: a junior's verdict does not count"),
        ],
    );
    let shown = pr_show(&env, &pr, "bob");
    assert_eq!(shown["reviews"], json!([]), "no forged review reaches the PR");
    assert_eq!(shown["gate"]["approvals"], json!([]));
    merge_blocked(&env, "bob", &pr, &["has 0"]);
    assert_eq!(env.state()["governance"]["prs"][&pr]["status"], "open");
}

#[test]
fn forged_decisions_by_others_than_the_ceo_are_rejected() {
    let env = TestEnv::with_org();
    let hire = run(&env, "hank", &["hr", "propose-hire", "sam", "--role", "ceo", "-m", "a second boss"]).success().out().to_string();
    let proposed = env.log_head().expect("a log");
    let hired = forge(
        &env,
        &proposed,
        "hank",
        "DECISION_RECORDED",
        json!({"proposal": hire, "approve": true, "policy": {}, "reason": "HR approves its own proposal"}),
    );
    let policy = forge(
        &env,
        &proposed,
        "bob",
        "DECISION_RECORDED",
        json!({"proposal": null, "approve": null, "policy": {"required_approvals": "0"}, "reason": "no reviews"}),
    );
    git_verify(&env, &hired).success();
    git_verify(&env, &policy).success();
    assert_verify_lists(
        &env,
        &[
            (&hired, "hr 'hank' may not record decisions (that takes ceo)"),
            (&policy, "senior 'bob' may not record decisions (that takes ceo)"),
        ],
    );
    let decisions = env.clutch(["decision", "list", "--json"]).success().json();
    assert_eq!(decisions["proposals"][0]["status"], "pending");
    assert_eq!(decisions["decisions"], json!([]));
    assert_eq!(decisions["policy"]["required_approvals"], 1);
    assert!(env.state()["agents"].get("sam").is_none());
    refused(&env, "sam", &["task", "new", "Boss", "--project", "core"], "unknown agent 'sam'");
    // The CEO can still decide the proposal.
    run(&env, "alice", &["decide", &hire, "--reject", "-m", "one is enough"]).success();
    assert_eq!(env.clutch(["decision", "list", "--json"]).success().json()["proposals"][0]["status"], "rejected");
}

#[test]
fn forged_events_by_a_fired_agent_are_rejected() {
    let env = TestEnv::with_org();
    seed_main(&env);
    env.clutch(["agent", "add", "sue", "--role", "senior"]).success();
    let (task, pr, head) = junior_pr(&env, "jill", "forged-fired");
    let opened = env.log_head().expect("a log");
    let fire = run(&env, "hank", &["hr", "propose-fire", "sue", "-m", "gone"]).success().out().to_string();
    run(&env, "alice", &["decide", &fire, "--approve", "-m", "agreed"]).success();

    // sue, fired, still holds her key and signs an approval and a task with it.
    let approval = forge(&env, &opened, "sue", "REVIEW_COMMENTED", json!({"pr": pr, "head": head, "verdict": "approve", "body": "ok"}));
    let created =
        forge_with(&env, &opened, "sue", "TASK_CREATED", json!({"title": "After hours", "description": null, "after": []}), None, |e| {
            e["task"] = Value::Null;
        });
    // Plain git with clutch's signers file refuses it too: the fired key is valid only before
    // the firing.
    let signers = env.clutch(["signers"]).success().stdout;
    assert!(signers.lines().any(|l| l.starts_with("sue@clutch.invalid") && l.contains("valid-before=")), "{signers}");
    git_verify(&env, &approval).code(1);
    let fired = "agent 'sue' was fired and may no longer act";
    assert_verify_lists(&env, &[(&approval, fired), (&created, fired)]);
    let shown = pr_show(&env, &pr, "bob");
    assert_eq!(shown["reviews"], json!([]));
    assert!(env.tasks(&[]).iter().all(|t| t["title"] != "After hours"));
    merge_blocked(&env, "bob", &pr, &["has 0"]);
    assert_eq!(env.state()["tasks"][&task]["status"], "assigned");
}

// ---------------------------------------------------------------------------------------------
// 4. Reports: cost and scorecards

/// The cost fields of a `cost --json` row, or an event's `cost` plus one event.
const COST_FIELDS: [&str; 6] = ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "usd_micros", "wall_ms"];

fn add_cost(row: &mut BTreeMap<String, u64>, cost: &Value) {
    *row.entry("events".into()).or_default() += 1;
    for field in COST_FIELDS {
        *row.entry(field.into()).or_default() += cost[field].as_u64().unwrap_or_else(|| panic!("{field} in {cost}"));
    }
}

fn cost_row(row: &Value) -> BTreeMap<String, u64> {
    std::iter::once("events")
        .chain(COST_FIELDS)
        .map(|f| (f.to_string(), row[f].as_u64().unwrap_or_else(|| panic!("{f} in {row}"))))
        .collect()
}

#[test]
fn cost_totals_equal_the_sum_over_valid_events() {
    let env = TestEnv::with_org();
    seed_main(&env);
    let day = |d: i64, minute: i64| START + d * DAY + minute * 60;
    let cost = |usd: &'static str, tin: &'static str, tout: &'static str| ["--cost-usd", usd, "--tokens-in", tin, "--tokens-out", tout];
    let new_task = |time: i64, agent: &str, args: &[&str]| {
        str_field(&run_at(&env, time, agent, &[&["task", "new", "--json"], args].concat()).success().json(), "id").to_string()
    };
    let task_a = new_task(day(1, 0), "bob", &["A", "--project", "core"]);
    let task_b = new_task(day(1, 1), "alice", &["B"]);
    run_at(&env, day(1, 2), "bob", &["task", "assign", &task_a, "jill"]).success();
    run_at(&env, day(1, 3), "bob", &["task", "assign", &task_b, "kim"]).success();
    commit_on(&env, "a", "a.txt", "a\n");
    run_at(&env, day(1, 10), "jill", &[&["test", "run", "--task", &task_a], &cost("0.11", "110", "11")[..], &["--", "true"]].concat())
        .success();
    let pr = run_at(&env, day(2, 0), "jill", &[&["pr", "open", "--task", &task_a], &cost("1.3", "1300", "130")[..]].concat())
        .success()
        .out()
        .to_string();
    run_at(&env, day(2, 5), "bob", &[&["pr", "review", &pr, "--request-changes", "-m", "more"], &cost("0.07", "70", "7")[..]].concat())
        .success();
    // A validly signed event the role gate refuses, carrying a large cost: it must count nowhere.
    let opened = env.log_head().expect("a log");
    let forged = forge_with(
        &env,
        &opened,
        "jill",
        "TASK_CREATED",
        json!({"title": "Own task", "description": null, "after": []}),
        Some(day(2, 6)),
        |e| {
            e["task"] = Value::Null;
            e["cost"]["usd_micros"] = json!(999_000_000u64);
            e["cost"]["input_tokens"] = json!(999_999u64);
            e["cost"]["source"] = json!("provider");
        },
    );
    commit_on(&env, "a", "a.txt", "a, better\n");
    run_at(&env, day(3, 0), "jill", &[&["pr", "update", &pr], &cost("0.5", "500", "50")[..]].concat()).success();
    run_at(&env, day(3, 1), "kim", &[&["test", "run", "--task", &task_b], &cost("0.023", "23", "2")[..], &["--", "true"]].concat())
        .success();
    run_at(&env, day(3, 2), "kim", &["task", "start", &task_b]).success();
    run_at(&env, day(3, 3), "kim", &[&["task", "done", &task_b], &cost("0.9", "900", "90")[..]].concat()).success();
    run_at(&env, day(3, 4), "bob", &[&["pr", "review", &pr, "--approve"], &cost("0.0125", "12", "1")[..]].concat()).success();
    run_at(&env, day(3, 5), "bob", &["pr", "merge", &pr]).success();

    // The log: every event with its validity and cost.
    let log = log_entries(&env);
    let invalid: Vec<&Value> = log.iter().filter(|e| e["valid"] != true).collect();
    assert_eq!(invalid.len(), 1);
    assert_eq!(invalid[0]["commit"], forged.as_str());
    assert_eq!(invalid[0]["event"]["cost"]["usd_micros"], 999_000_000u64);
    assert!(invalid[0]["rejected"].as_str().is_some_and(|r| r.contains("junior 'jill' may not create tasks")), "{}", invalid[0]);
    let valid: Vec<&Value> = log.iter().filter(|e| e["valid"] == true).map(|e| &e["event"]).collect();
    let mut expected_total = BTreeMap::new();
    for event in &valid {
        add_cost(&mut expected_total, &event["cost"]);
    }
    // The figures given on the command line, exactly.
    assert_eq!(expected_total["usd_micros"], 110_000 + 1_300_000 + 70_000 + 500_000 + 23_000 + 900_000 + 12_500);
    assert_eq!(expected_total["input_tokens"], 110 + 1300 + 70 + 500 + 23 + 900 + 12);
    assert_eq!(expected_total["output_tokens"], 11 + 130 + 7 + 50 + 2 + 90 + 1);

    let state = env.state();
    let role_of = |agent: &str| str_field(&state["agents"][agent], "role").to_string();
    for by in ["agent", "task", "project", "role", "day", "type"] {
        let report = env.clutch(["cost", "--by", by, "--json"]).success().json();
        assert_eq!(report["by"], by);
        assert_eq!(cost_row(&report["total"]), expected_total, "cost --by {by}: the total is the sum over valid events");
        assert_eq!(report["total"]["key"], "total");
        let mut expected: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for event in &valid {
            let key = match by {
                "agent" => str_field(event, "actor_agent_id").to_string(),
                "task" => event["task"].as_str().unwrap_or("-").to_string(),
                "project" => event["project"].as_str().unwrap_or("-").to_string(),
                "role" => role_of(str_field(event, "actor_agent_id")),
                "day" => str_field(event, "at")[..10].to_string(),
                _ => str_field(event, "type").to_string(),
            };
            add_cost(expected.entry(key).or_default(), &event["cost"]);
        }
        let rows: BTreeMap<String, BTreeMap<String, u64>> =
            report["rows"].as_array().expect("rows").iter().map(|r| (str_field(r, "key").to_string(), cost_row(r))).collect();
        assert_eq!(rows, expected, "cost --by {by}: each row is the sum over its events");
        let mut summed = BTreeMap::new();
        for row in rows.values() {
            for (field, value) in row {
                *summed.entry(field.clone()).or_insert(0u64) += value;
            }
        }
        assert_eq!(summed, expected_total, "cost --by {by}: the rows add up to the total");
    }
    let by_agent = env.clutch(["cost", "--by", "agent", "--json"]).success().json();
    let jill = by_agent["rows"].as_array().expect("rows").iter().find(|r| r["key"] == "jill").expect("a row for jill");
    assert_eq!(jill["usd_micros"], 1_910_000);
    assert_eq!(jill["events"], 3, "jill's forged event is not hers to count");

    // --since: only events from that day on.
    let since = rfc3339(day(3, 0))[..10].to_string();
    let report = env.clutch(["cost", "--since", &since, "--json"]).success().json();
    let mut expected_since = BTreeMap::new();
    for event in valid.iter().filter(|e| str_field(e, "at") >= since.as_str()) {
        add_cost(&mut expected_since, &event["cost"]);
    }
    assert_eq!(cost_row(&report["total"]), expected_since);
    assert_eq!(expected_since["usd_micros"], 500_000 + 23_000 + 900_000 + 12_500);

    // The spend in the state agrees.
    assert_eq!(state["spend"]["usd_micros"], expected_total["usd_micros"]);
    assert_eq!(state["agents"]["jill"]["spend"]["usd_micros"], 1_910_000);
}

#[test]
fn scorecard_figures_match_a_hand_built_log() {
    let env = TestEnv::with_org();
    seed_main(&env);
    let base = START + DAY;
    let m = |minutes: i64| base + minutes * 60;
    let at = |minutes: i64, agent: &str, args: &[&str]| run_at(&env, m(minutes), agent, args);
    let task_a = str_field(&at(0, "bob", &["task", "new", "A", "--project", "core", "--json"]).success().json(), "id").to_string();
    at(1, "bob", &["task", "assign", &task_a, "jill"]).success();
    let task_b = str_field(&at(2, "bob", &["task", "new", "B", "--project", "core", "--json"]).success().json(), "id").to_string();
    at(3, "bob", &["task", "assign", &task_b, "jill"]).success();

    // PR A: tests (one pass, one fail), opened, changes requested, updated, tested, approved,
    // merged 5.5 hours after the assignment.
    commit_on(&env, "a", "a.txt", "a\n");
    at(10, "jill", &["test", "run", "--task", &task_a, "--cost-usd", "0.10", "--tokens-in", "100", "--tokens-out", "10", "--", "true"])
        .success();
    at(11, "jill", &["test", "run", "--task", &task_a, "--cost-usd", "0.20", "--tokens-in", "200", "--tokens-out", "20", "--", "false"])
        .code(1);
    let pr_a = at(12, "jill", &["pr", "open", "--task", &task_a, "--cost-usd", "1.00", "--tokens-in", "1000", "--tokens-out", "100"])
        .success()
        .out()
        .to_string();
    at(20, "bob", &["pr", "review", &pr_a, "--request-changes", "-m", "more tests", "--cost-usd", "0.05", "--tokens-in", "50"]).success();
    commit_on(&env, "a", "a.txt", "a, tested\n");
    at(30, "jill", &["pr", "update", &pr_a, "--cost-usd", "0.50", "--tokens-in", "500", "--tokens-out", "50"]).success();
    at(31, "jill", &["test", "run", "--pr", &pr_a, "--cost-usd", "0.30", "--tokens-in", "300", "--tokens-out", "30", "--", "true"])
        .success();
    at(40, "bob", &["pr", "review", &pr_a, "--approve"]).success();
    at(331, "bob", &["pr", "merge", &pr_a]).success();

    // PR B: tested, opened, approved on first review, not merged.
    commit_on(&env, "b", "b.txt", "b\n");
    at(340, "jill", &["test", "run", "--task", &task_b, "--cost-usd", "0.40", "--tokens-in", "400", "--tokens-out", "40", "--", "true"])
        .success();
    let pr_b = at(341, "jill", &["pr", "open", "--task", &task_b, "--cost-usd", "0.25", "--tokens-in", "250", "--tokens-out", "25"])
        .success()
        .out()
        .to_string();
    at(350, "bob", &["pr", "review", &pr_b, "--approve", "-m", "good"]).success();
    let state = env.state();
    assert_eq!(state["tasks"][&task_a]["status"], "done");
    assert_eq!(state["tasks"][&task_a]["assigned_at"], rfc3339(m(1)).as_str());
    assert_eq!(state["tasks"][&task_a]["done_at"], rfc3339(m(331)).as_str());

    let cards = at(360, "hank", &["hr", "scorecard", "jill", "--window", "all", "--json"]).success().json();
    assert_eq!(
        cards,
        json!([{
            "agent": "jill",
            "role": "junior",
            "window": "all",
            "tasks_done": 1,
            "prs_opened": 2,
            "prs_merged": 1,
            "first_review_approval_rate": 0.5,
            "review_rounds_per_merged_pr": 2.0,
            "test_runs": 4,
            "test_pass_rate": 0.75,
            "usd_micros": 2_750_000,
            "tokens": 2750 + 275,
            "cost_per_merged_pr_usd_micros": 2_750_000,
            "median_cycle_time_hours": 5.5,
        }])
    );

    // A one-hour window at m(360) starts at m(300): PR A's merge, PR B's opening, one passing run.
    let card = &at(360, "hank", &["hr", "scorecard", "jill", "--window", "1h", "--json"]).success().json()[0];
    assert_eq!(card["tasks_done"], 1);
    assert_eq!(card["prs_opened"], 1);
    assert_eq!(card["prs_merged"], 1);
    assert_eq!(card["first_review_approval_rate"], 1.0);
    assert_eq!(card["review_rounds_per_merged_pr"], 2.0);
    assert_eq!(card["test_runs"], 1);
    assert_eq!(card["test_pass_rate"], 1.0);
    assert_eq!(card["usd_micros"], 650_000);
    assert_eq!(card["tokens"], 650 + 65);
    assert_eq!(card["median_cycle_time_hours"], 5.5);

    // bob's card: the reviewer and merger, with his own costs.
    let bob = &at(360, "hank", &["hr", "scorecard", "bob", "--window", "all", "--json"]).success().json()[0];
    assert_eq!(bob["role"], "senior");
    assert_eq!(bob["prs_opened"], 0);
    assert_eq!(bob["usd_micros"], 50_000);
    assert_eq!(bob["tokens"], 50);
    assert_eq!(bob["test_pass_rate"], Value::Null);
    assert_eq!(bob["median_cycle_time_hours"], Value::Null);

    // HR records the evaluation: the same figures, kept in the log.
    refused(&env, "bob", &["hr", "eval", "jill", "--window", "all"], "senior 'bob' may not report evaluations");
    at(361, "hank", &["hr", "eval", "jill", "--window", "all", "-m", "solid"]).success();
    let eval = head_event(&env);
    assert_eq!(eval["type"], "EVAL_REPORTED");
    assert_eq!(
        eval["payload"]["scorecard"],
        json!({
            "tasks_done": 1.0, "prs_opened": 2.0, "prs_merged": 1.0, "test_runs": 4.0, "usd": 2.75, "tokens": 3025.0,
            "first_review_approval_rate": 0.5, "review_rounds_per_merged_pr": 2.0, "test_pass_rate": 0.75,
            "cost_per_merged_pr_usd": 2.75, "median_cycle_time_hours": 5.5,
        })
    );
    assert_eq!(env.state()["governance"]["evals"][0]["agent"], "jill");
    env.clutch(["verify"]).success();
}

#[test]
fn a_senior_who_pushed_any_head_of_a_pr_cannot_approve_it() {
    let env = TestEnv::with_org();
    seed_main(&env);
    let (_, pr, _) = junior_pr(&env, "jill", "pushed");
    // bob puts his own commit on the junior's PR, then jill moves the head on: bob's code is
    // still in it, so bob's approval of the new head must not count.
    commit_on(&env, "pushed", "pushed.txt", "bob's change\n");
    run(&env, "bob", &["pr", "update", &pr]).success();
    let head = commit_on(&env, "pushed", "pushed.txt", "jill's follow-up\n");
    run(&env, "jill", &["pr", "update", &pr]).success();
    run(&env, "bob", &["pr", "review", &pr, "--approve", "-m", "lgtm"]).success();
    assert_eq!(pr_show(&env, &pr, "alice")["gate"]["approvals"], json!([]), "bob pushed a head of this PR");
    merge_blocked(&env, "alice", &pr, &[&format!("needs 1 senior approval(s) on head {}, has 0", short(&head))]);
    // Someone who pushed nothing to it approves: that counts.
    run(&env, "alice", &["pr", "review", &pr, "--approve", "-m", "ok"]).success();
    merge_ok(&env, "alice", &pr);
}
