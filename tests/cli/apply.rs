//! `git clutch apply org.toml`: the log made to match a declared org, only what differs,
//! all-or-nothing when the file asks for a change apply cannot make.

use crate::common::TestEnv;

const ORG: &str = r#"
[agents.sam]
role = "senior"
runtime = "in-process"
settings = { program = "reviewer" }

[agents.jo]
role = "junior"
runtime = "in-process"
settings = { program = "worker", test_command = "true" }

[projects.parser]
description = "A small parser"

[policy]
require_tests = true
protected_branches = ["main", "release"]

[budgets]
org = { usd = 50.0, tokens = 5000000 }
"project:parser" = { usd = 10.0 }
"#;

fn write(env: &TestEnv, text: &str) -> String {
    let path = env.root.join("org.toml");
    std::fs::write(&path, text).expect("write org.toml");
    path.to_str().expect("utf-8 path").to_string()
}

#[test]
fn apply_records_what_differs_then_nothing() {
    let env = TestEnv::with_org();
    let file = write(&env, ORG);
    let before = env.log_commits().len();

    let dry = env.clutch(["apply", &file, "--dry-run"]).success();
    assert!(dry.out().contains("+ agent sam (senior)") && dry.out().contains("~ budget org $50.00 5000000 tokens"), "{dry}");
    assert_eq!(env.log_commits().len(), before, "a dry run records nothing");

    let applied = env.clutch(["apply", &file, "--json"]).success().json();
    let changes = applied["changes"].as_array().expect("changes").len();
    assert_eq!(changes, 8, "{applied}");
    assert_eq!(env.log_commits().len(), before + 8, "one event per change");

    let state = env.state();
    assert_eq!(state["agents"]["sam"]["role"], "senior");
    assert_eq!(state["agents"]["sam"]["runtime"]["settings"]["program"], "reviewer");
    assert_eq!(state["agents"]["jo"]["runtime"]["settings"]["test_command"], "true");
    assert_eq!(state["projects"]["parser"]["description"], "A small parser");
    assert_eq!(state["governance"]["policy"]["require_tests"], true);
    assert_eq!(state["governance"]["policy"]["protected_branches"], serde_json::json!(["main", "release"]));
    assert_eq!(state["governance"]["budgets"]["org"]["usd_micros"], 50_000_000);
    assert_eq!(state["governance"]["budgets"]["project:parser"]["usd_micros"], 10_000_000);

    let again = env.clutch(["apply", &file]).success();
    assert_eq!(again.out().trim(), "Nothing changed.");
    assert_eq!(env.log_commits().len(), before + 8);
    env.clutch(["verify"]).success();
}

#[test]
fn apply_refuses_what_it_cannot_do_and_writes_nothing() {
    let env = TestEnv::with_org();
    let head = env.log_head();
    // jill is a junior in the log; a role change is HR's and the CEO's decision, not apply's.
    let file = write(&env, &format!("{ORG}\n[agents.jill]\nrole = \"senior\"\n"));
    let out = env.clutch(["apply", &file]).code(1);
    assert!(out.error().contains("agent jill is junior in the log, senior in the file"), "{out}");
    assert_eq!(env.log_head(), head, "nothing of the file was applied");

    let bad = write(&env, "[agents.x]\nrole = \"intern\"\n");
    let out = env.clutch(["apply", &bad]).code(1);
    assert!(out.error().contains("the org file is not valid"), "{out}");
    let bad = write(&env, "[agents.x]\nrole = \"junior\"\nruntime = \"warp-drive\"\n");
    let out = env.clutch(["apply", &bad]).code(1);
    assert!(out.error().contains("no runtime named 'warp-drive'"), "{out}");
    let out = env.clutch_as("bob", ["apply", &write(&env, ORG)]).code(1);
    assert!(out.error().contains("'bob' may not make these changes"), "only the CEO applies agents, policy, budgets: {out}");
    assert_eq!(env.log_head(), head);
}
