//! Refusals: each one is a one-line `error:` that names the problem (plus at most a hint), a
//! non-zero exit code, and no event written — every ref, `refs/clutch/log` first, is unchanged.

use crate::common::{CommandOutput, TestEnv};

/// Every ref and where it points.
fn refs(env: &TestEnv) -> String {
    env.git(["for-each-ref", "--format=%(refname) %(objectname)"]).success().stdout
}

/// Run clutch, expect exit `code` and an error mentioning `needle`, and that nothing moved.
#[track_caller]
fn refused(env: &TestEnv, args: &[&str], code: i32, needle: &str) -> CommandOutput {
    let before = refs(env);
    let head = env.log_head();
    let out = env.clutch(args).code(code);
    let error = out.error();
    assert!(error.contains(needle), "the error should mention {needle:?}:\n{out}");
    assert!(out.stdout.is_empty(), "a refused command prints nothing on stdout:\n{out}");
    assert_eq!(env.log_head(), head, "refs/clutch/log moved after:\n{out}");
    assert_eq!(refs(env), before, "a ref moved after:\n{out}");
    out
}

/// Like [`refused`] for clap's usage errors (exit 2): clap prints a usage block after the
/// error line, so only the first line is held to the format.
#[track_caller]
fn usage_error(env: &TestEnv, args: &[&str], needle: &str, also: &str) {
    let before = refs(env);
    let out = env.clutch(args).code(2);
    let first = out.stderr.lines().next().unwrap_or("");
    assert!(first.starts_with("error: ") && first.contains(needle), "first stderr line should be an error naming {needle:?}:\n{out}");
    assert!(out.stderr.contains(also), "stderr should mention {also:?}:\n{out}");
    assert!(out.stdout.is_empty(), "{out}");
    assert_eq!(refs(env), before, "a ref moved after:\n{out}");
}

#[test]
fn junior_and_hr_may_not_create_tasks() {
    let env = TestEnv::with_org();
    refused(&env, &["--as", "jill", "task", "new", "Not mine to plan"], 1, "junior 'jill' may not create tasks");
    refused(&env, &["--as", "hank", "task", "new", "Not mine either"], 1, "hr 'hank' may not create tasks");
    refused(&env, &["--as", "jill", "project", "new", "side"], 1, "junior 'jill' may not create projects");
    assert!(env.tasks(&[]).is_empty());
}

#[test]
fn unknown_acting_agent_is_refused() {
    let env = TestEnv::with_org();
    let out = refused(&env, &["--as", "nobody", "task", "new", "Who am I"], 1, "unknown agent 'nobody'");
    assert!(out.stderr.contains("hint: "), "says what to do:\n{out}");
    let mut cmd = env.command(crate::common::CLUTCH);
    cmd.env("CLUTCH_ACTOR", "ghost").args(["task", "new", "Boo"]);
    let out = cmd.output().expect("run clutch");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: unknown agent 'ghost'\n"));
    assert_eq!(env.log_commits().len(), 6);
}

#[test]
fn dependency_on_a_missing_task_is_refused() {
    let env = TestEnv::with_org();
    refused(&env, &["task", "new", "Floating", "--after", "t-deadbee"], 1, "no task 't-deadbee'");
    let real = env.new_task("alice", "Real", &[]);
    refused(&env, &["task", "new", "Half floating", "--after", &real, "--after", "t-0000000"], 1, "no task 't-0000000'");
    refused(&env, &["task", "edit", &real, "--after", "t-1234567"], 1, "no task 't-1234567'");
    refused(&env, &["task", "new", "In no project", "--project", "nowhere"], 1, "no project 'nowhere'");
    assert_eq!(env.task_ids(&[]), [real]);
}

#[test]
fn dependency_cycles_are_refused() {
    let env = TestEnv::with_org();
    let a = env.new_task("bob", "A", &[]);
    let b = env.new_task("bob", "B", &["--after", &a]);
    let c = env.new_task("bob", "C", &["--after", &b]);
    let out = refused(&env, &["--as", "bob", "task", "edit", &a, "--after", &b], 1, "dependency cycle");
    assert!(out.error().contains(&a) && out.error().contains(&b), "the cycle is named:\n{out}");
    refused(&env, &["--as", "bob", "task", "edit", &a, "--after", &a], 1, "dependency cycle");
    let out = refused(&env, &["--as", "bob", "task", "edit", &a, "--after", &c], 1, "dependency cycle");
    assert!(out.error().contains(&c), "{out}");
    let state = env.state();
    assert_eq!(state["tasks"][&a]["after"], serde_json::json!([]));
    // Not every new edge is a cycle: C after A is fine.
    env.clutch_as("bob", ["task", "edit", &c, "--after", &a]).success();
    assert_eq!(env.state()["tasks"][&c]["after"], serde_json::json!([b, a]));
}

#[test]
fn malformed_arguments_are_usage_errors() {
    let env = TestEnv::with_org();
    let missing = "the following required arguments were not provided";
    usage_error(&env, &["task", "new", "x", "--bogus"], "unexpected argument '--bogus'", "Usage: git clutch task new");
    usage_error(
        &env,
        &["agent", "add", "zed", "--role", "boss"],
        "invalid value 'boss' for '--role <ROLE>'",
        "expected ceo, hr, senior or junior",
    );
    usage_error(&env, &["agent", "add", "zed"], missing, "--role <ROLE>");
    usage_error(&env, &["task", "list", "--status", "weird"], "invalid value 'weird' for '--status <STATUS>'", "in_progress");
    usage_error(&env, &["task", "new"], missing, "<TITLE>");
    usage_error(&env, &["task", "frobnicate"], "unrecognized subcommand 'frobnicate'", "Usage: git clutch task");
    usage_error(&env, &["init", "--name", "acme"], missing, "--founder <FOUNDER>");
    usage_error(&env, &["--as"], "a value is required for '--as <AGENT>'", "");
    assert!(std::fs::read_dir(env.clutch_home.join("keys")).expect("keys").all(|e| {
        let name = e.expect("entry").file_name();
        !name.to_string_lossy().starts_with("zed-")
    }));
}

#[test]
fn init_twice_is_refused() {
    let env = TestEnv::with_org();
    let keys = || {
        let mut names: Vec<String> = std::fs::read_dir(env.clutch_home.join("keys"))
            .expect("keys dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = keys();
    let org = env.git_ok(["config", "clutch.orgId"]);
    let out = refused(&env, &["init", "--name", "acme", "--founder", "alice"], 1, "already has a clutch org");
    assert!(out.error().contains(&env.log_head().expect("a log")), "names where the log is:\n{out}");
    refused(&env, &["init", "--name", "other", "--founder", "mallory"], 1, "already has a clutch org");
    assert_eq!(keys(), before, "no key was made for a refused init");
    assert_eq!(env.git_ok(["config", "clutch.orgId"]), org);
    assert_eq!(env.git_ok(["config", "clutch.actor"]), "alice");
}

#[test]
fn outside_a_git_repository() {
    let env = TestEnv::new();
    let elsewhere = env.root.join("not-a-repo");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    let out = env.clutch_in(&elsewhere, ["init", "--name", "acme", "--founder", "alice"]).code(1);
    assert!(out.error().starts_with("not a git repository"), "{out}");
    assert!(!env.clutch_home.join("keys").exists(), "no key is made outside a repository");
    let out = env.clutch_in(&elsewhere, ["task", "list"]).code(1);
    assert!(out.error().starts_with("not a git repository"), "{out}");
    assert!(std::fs::read_dir(&elsewhere).expect("list").next().is_none(), "nothing written where clutch was run");
    // A repository without an org says so.
    let out = refused(&env, &["task", "list"], 1, "no clutch org");
    assert!(out.stderr.contains("hint: create one with: git clutch init"), "{out}");
}

#[test]
fn only_the_ceo_adds_agents() {
    let env = TestEnv::with_org();
    refused(&env, &["--as", "bob", "agent", "add", "quinn", "--role", "junior"], 1, "senior 'bob' may not add agents");
    refused(&env, &["--as", "hank", "agent", "add", "quinn", "--role", "junior"], 1, "hr 'hank' may not add agents");
    refused(&env, &["--as", "jill", "agent", "add", "quinn", "--role", "ceo"], 1, "junior 'jill' may not add agents");
    let leftovers: Vec<_> = std::fs::read_dir(env.clutch_home.join("keys"))
        .expect("keys dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("quinn"))
        .collect();
    assert!(leftovers.is_empty(), "a refused agent add leaves no key behind: {leftovers:?}");
    refused(&env, &["agent", "add", "bob", "--role", "junior"], 1, "agent 'bob' already exists");
    refused(&env, &["agent", "add", "Bad Name", "--role", "junior"], 1, "agent id 'Bad Name' is not valid");
    assert_eq!(env.state()["agents"].as_object().map(|a| a.len()), Some(5));
}

#[test]
fn claiming_an_assigned_task_is_a_conflict() {
    let env = TestEnv::with_org();
    let task = env.new_task("bob", "Taken", &[]);
    env.clutch_as("bob", ["task", "assign", &task, "jill"]).success();
    refused(&env, &["--as", "kim", "task", "claim", &task], 3, &format!("task {task} is already assigned to jill"));
    // HR does not work tasks at all.
    let free = env.new_task("bob", "Free", &[]);
    refused(&env, &["--as", "hank", "task", "claim", &free], 1, "hr 'hank' may not claim tasks");
    refused(&env, &["--as", "bob", "task", "assign", &free, "nobody"], 1, "'nobody' is not an active agent");
    refused(&env, &["--as", "jill", "task", "assign", &free, "jill"], 1, "junior 'jill' may not assign tasks");
    assert_eq!(env.state()["tasks"][&task]["assignee"], "jill");
}

#[test]
fn starting_a_task_whose_dependencies_are_not_done_is_refused() {
    let env = TestEnv::with_org();
    let first = env.new_task("bob", "First", &[]);
    let second = env.new_task("bob", "Second", &["--after", &first]);
    env.clutch_as("bob", ["task", "assign", &second, "jill"]).success();
    let out = refused(&env, &["--as", "jill", "task", "start", &second], 1, &format!("task {second} waits for {first}"));
    assert!(out.error().contains("to be done"), "{out}");
    refused(&env, &["--as", "jill", "task", "done", &second], 1, &format!("waits for {first}"));
    // Nor may someone else start it, nor may anyone start an unassigned task.
    refused(&env, &["--as", "kim", "task", "start", &second], 1, "only the assignee may start");
    refused(&env, &["--as", "bob", "task", "start", &first], 1, "only the assignee may start");
    // Once the dependency is done, it starts.
    env.clutch_as("kim", ["task", "claim", &first]).success();
    env.clutch_as("kim", ["task", "done", &first]).success();
    env.clutch_as("jill", ["task", "start", &second]).success();
    assert_eq!(env.state()["tasks"][&second]["status"], "in_progress");
}

#[test]
fn closed_tasks_stay_closed() {
    let env = TestEnv::with_org();
    let task = env.new_task("bob", "Short-lived", &[]);
    refused(&env, &["--as", "jill", "task", "cancel", &task], 1, "junior 'jill' may not cancel tasks");
    env.clutch_as("bob", ["task", "cancel", &task]).success();
    refused(&env, &["--as", "jill", "task", "claim", &task], 1, "cancelled");
    refused(&env, &["--as", "bob", "task", "edit", &task, "--title", "Revived"], 1, "cancelled");
    refused(&env, &["--as", "bob", "task", "done", &task], 1, "cancelled");
    refused(&env, &["task", "new", "Two\nlines"], 1, "one line");
    refused(&env, &["task", "new", "   "], 1, "empty");
    refused(&env, &["task", "show", "t-fffffff"], 1, "no task 't-fffffff'");
}
