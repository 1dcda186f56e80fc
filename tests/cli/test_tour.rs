//! The happy path, end to end: found an org, staff it, plan work with dependencies, do it, and
//! read it all back through `task list`, `state`, `log` and `verify`.

use serde_json::{json, Value};

use crate::common::{ids, str_field, TestEnv};

#[test]
fn init_founds_the_org_and_pins_it() {
    let env = TestEnv::new();
    let out = env.clutch(["init", "--name", "acme", "--founder", "alice"]).success();
    let org = out.out();
    assert!(org.len() == 40 && org.bytes().all(|b| b.is_ascii_hexdigit()), "init prints the org id:\n{out}");
    assert_eq!(env.log_head().as_deref(), Some(org), "the org id is the genesis commit, the only commit of the log");
    assert_eq!(env.log_commits(), vec![org.to_string()]);
    assert_eq!(env.git_ok(["config", "clutch.actor"]), "alice");
    assert_eq!(env.git_ok(["config", "clutch.orgId"]), org);
    assert_eq!(env.git_ok(["cat-file", "-t", org]), "commit");
    assert_eq!(env.git_ok(["rev-list", "--parents", "-n", "1", org]), org, "the genesis commit has no parent");

    let state = env.state();
    assert_eq!(state["org"], json!({"id": org, "name": "acme", "founder": "alice", "created_at": "2026-11-24T08:00:00Z"}));
    assert_eq!(state["agents"]["alice"]["role"], "ceo");
    assert_eq!(state["events"], 1);
}

#[test]
fn tour_of_an_org() {
    let env = TestEnv::new();
    let org = env.clutch(["init", "--name", "acme", "--founder", "alice", "--json"]).success().json();
    let org_id = str_field(&org, "id").to_string();
    assert_eq!(org["event"], org["id"]);
    assert_eq!(org["founder"], "alice");

    // Staff of every role; each `agent add --json` names the agent and the new head.
    for (id, role) in [("carol", "ceo"), ("bob", "senior"), ("hank", "hr"), ("jill", "junior"), ("kim", "junior")] {
        let added = env.clutch(["agent", "add", id, "--role", role, "--json"]).success().json();
        assert_eq!(added["id"], id);
        assert_eq!(added["event"].as_str(), env.log_head().as_deref());
    }
    let project = env.clutch(["project", "new", "core", "--json"]).success().json();
    assert_eq!(project["id"], "core");
    assert_eq!(project["event"].as_str(), env.log_head().as_deref());
    assert_eq!(env.clutch(["project", "list"]).success().stdout.lines().nth(1).map(|l| l.starts_with("core ")), Some(true));

    // A plan: design → build → test, docs, and ship after build and docs.
    let design = env.new_task("bob", "Design the parser", &["--project", "core", "--description", "grammar first"]);
    let build = env.new_task("bob", "Build the parser", &["--project", "core", "--after", &design]);
    let test = env.new_task("alice", "Test the parser", &["--project", "core", "--after", &build]);
    let docs = env.new_task("carol", "Write the docs", &[]);
    let ship = env.new_task("bob", "Ship it", &["--after", &build, "--after", &docs]);
    let all = [&design, &build, &test, &docs, &ship];
    assert_eq!(env.task_ids(&[]), ids(all), "task list is oldest first");
    assert_eq!(env.task_ids(&["--ready"]), ids([&design, &docs]));
    assert_eq!(env.task_ids(&["--project", "core"]), ids([&design, &build, &test]));
    assert_eq!(env.task_ids(&["--status", "open"]).len(), 5);

    // jill is given the design, works it, attaches notes, finishes.
    assert_eq!(env.clutch_as("bob", ["task", "assign", &design, "jill"]).success().out(), format!("{design} assigned to jill"));
    assert_eq!(env.task_ids(&["--ready"]), ids([&design, &docs]), "an assigned task is still ready");
    assert_eq!(env.task_ids(&["--assignee", "jill"]), ids([&design]));
    env.clutch_as("jill", ["task", "start", &design]).success();
    assert_eq!(env.task_ids(&["--ready"]), ids([&docs]), "a started task is no longer ready");
    assert_eq!(env.task_ids(&["--status", "in_progress"]), ids([&design]));
    let notes = env.root.join("notes.md");
    std::fs::write(&notes, "# Parser design\n\nRecursive descent.\n").expect("write notes");
    let artifact_out =
        env.clutch_as("jill", ["artifact", "add", &design, notes.to_str().expect("utf-8 path"), "--kind", "report"]).success();
    let artifact_event = artifact_out.out().to_string();
    assert_eq!(env.log_head().as_deref(), Some(artifact_event.as_str()), "artifact add prints its event");
    env.clutch_as("jill", ["task", "done", &design]).success();
    assert_eq!(env.task_ids(&["--ready"]), ids([&build, &docs]), "build becomes ready once design is done");

    // kim claims the build; jill claims the docs.
    assert_eq!(env.clutch_as("kim", ["task", "claim", &build]).success().out(), format!("{build} claimed by kim"));
    env.clutch_as("kim", ["task", "start", &build]).success();
    env.clutch_as("kim", ["task", "done", &build]).success();
    assert_eq!(env.task_ids(&["--ready"]), ids([&test, &docs]), "ship still waits for docs");
    env.clutch_as("jill", ["task", "claim", &docs]).success();
    env.clutch_as("jill", ["task", "done", &docs]).success();
    let mut ready = vec![test.clone(), ship.clone()];
    assert_eq!(env.task_ids(&["--ready"]), ready);
    env.clutch_as("carol", ["task", "cancel", &test]).success();
    ready.retain(|t| *t != test);
    assert_eq!(env.task_ids(&["--ready"]), ready, "a cancelled task is not ready");
    assert_eq!(env.task_ids(&["--status", "done"]), ids([&design, &build, &docs]));
    assert_eq!(env.task_ids(&["--status", "cancelled"]), ids([&test]));
    assert_eq!(env.task_ids(&["--assignee", "jill"]), ids([&design, &docs]));

    // The whole state, as JSON.
    let commits = env.log_commits();
    let state = env.state();
    assert_eq!(state["org"]["id"], org_id);
    assert_eq!(state["org"]["name"], "acme");
    assert_eq!(state["org"]["founder"], "alice");
    assert_eq!(state["head"].as_str(), env.log_head().as_deref());
    assert_eq!(state["events"], commits.len(), "every commit of the log is an applied event");
    assert_eq!(state["clock"], commits.len(), "a linear log's clock counts its events");
    assert_eq!(state["rejected"], json!([]));
    let roles: Vec<(String, String)> = state["agents"]
        .as_object()
        .expect("agents is an object")
        .iter()
        .map(|(id, a)| (id.clone(), str_field(a, "role").to_string()))
        .collect();
    let expected_roles = [("alice", "ceo"), ("bob", "senior"), ("carol", "ceo"), ("hank", "hr"), ("jill", "junior"), ("kim", "junior")];
    assert_eq!(roles, expected_roles.map(|(a, r)| (a.to_string(), r.to_string())));
    for agent in state["agents"].as_object().expect("agents").values() {
        assert_eq!(agent["status"], "active");
        assert!(str_field(agent, "public_key").starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"), "{agent}");
    }
    assert_eq!(state["agents"]["jill"]["events"], 5, "jill started, attached, finished, claimed and finished");
    assert_eq!(state["projects"]["core"]["created_by"], "alice");
    let task = |id: &str| state["tasks"][id].clone();
    assert_eq!(task(&design)["title"], "Design the parser");
    assert_eq!(task(&design)["description"], "grammar first");
    assert_eq!(task(&design)["status"], "done");
    assert_eq!(task(&design)["assignee"], "jill");
    assert_eq!(task(&design)["created_by"], "bob");
    assert_eq!(task(&design)["project"], "core");
    assert_eq!(task(&build)["assignee"], "kim");
    assert_eq!(task(&test)["status"], "cancelled");
    assert_eq!(task(&docs)["project"], Value::Null);
    assert_eq!(task(&ship)["after"], json!([build, docs]));
    assert_eq!(task(&ship)["status"], "open");
    assert_eq!(task(&ship)["event"].as_str().map(|e| &e[..7]), Some(&ship[2..]));
    assert_eq!(state["ready"], json!([ship]));

    // The artifact: registered with its blob, and the content sits in the event's own tree.
    let blob = env.git_ok(["hash-object", notes.to_str().expect("utf-8 path")]);
    let artifacts = &state["artifacts"];
    assert_eq!(artifacts.as_array().map(Vec::len), Some(1));
    assert_eq!(artifacts[0]["task"], design.as_str());
    assert_eq!(artifacts[0]["path"], "notes.md");
    assert_eq!(artifacts[0]["kind"], "report");
    assert_eq!(artifacts[0]["blob"], blob.as_str());
    assert_eq!(artifacts[0]["size"], 36);
    assert_eq!(artifacts[0]["by"], "jill");
    assert_eq!(artifacts[0]["event"], artifact_event.as_str());
    assert_eq!(env.git_ok(["rev-parse", &format!("{artifact_event}:files/notes.md")]), blob);
    assert_eq!(env.git_ok(["show", &format!("{artifact_event}:files/notes.md")]), "# Parser design\n\nRecursive descent.");
    assert_eq!(env.clutch(["artifact", "list", "--task", &design, "--json"]).success().json(), json!([artifacts[0]]));
    assert_eq!(env.clutch(["artifact", "list", "--task", &ship, "--json"]).success().json(), json!([]));
    let shown = env.clutch(["task", "show", &design, "--json"]).success().json();
    assert_eq!(shown["id"], design.as_str());
    assert_eq!(shown["ready"], false);
    assert_eq!(shown["artifacts"], json!([artifacts[0]]));
    assert_eq!(env.clutch(["task", "show", &ship, "--json"]).success().json()["ready"], true);

    // The log, oldest first, in commit order.
    let log = env.clutch(["log", "--json"]).success().json();
    let log = log.as_array().expect("log --json is an array");
    let logged: Vec<&str> = log.iter().map(|e| str_field(e, "commit")).collect();
    assert_eq!(logged, commits.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(log.iter().all(|e| e["valid"] == true && e["rejected"].is_null()), "{log:?}");
    let types: Vec<&str> = log.iter().map(|e| str_field(&e["event"], "type")).collect();
    let mut expected = vec!["ORG_CREATED"];
    expected.extend(["AGENT_REGISTERED"; 5]);
    expected.push("PROJECT_CREATED");
    expected.extend(["TASK_CREATED"; 5]);
    expected.extend(["TASK_ASSIGNED", "TASK_STATUS_CHANGED", "ARTIFACT_PRODUCED", "TASK_STATUS_CHANGED"]);
    expected.extend(["TASK_ASSIGNED", "TASK_STATUS_CHANGED", "TASK_STATUS_CHANGED"]);
    expected.extend(["TASK_ASSIGNED", "TASK_STATUS_CHANGED", "TASK_STATUS_CHANGED"]);
    assert_eq!(types, expected);
    let clocks: Vec<u64> = log.iter().map(|e| e["event"]["clock"].as_u64().expect("clock")).collect();
    assert_eq!(clocks, (1..=log.len() as u64).collect::<Vec<_>>(), "clocks rise by one along a linear log");
    let human = env.clutch(["log"]).success();
    let lines: Vec<&str> = human.stdout.lines().collect();
    assert_eq!(lines.len(), commits.len(), "{human}");
    for (line, commit) in lines.iter().zip(&commits) {
        assert!(line.starts_with(&commit[..10]), "log line {line:?} should start with {}", &commit[..10]);
    }
    assert!(lines[0].contains("ORG_CREATED") && lines[0].contains("alice"), "{human}");
    assert!(lines.last().expect("a line").contains("TASK_STATUS_CHANGED"), "{human}");
    let last_two = env.clutch(["log", "-n", "2"]).success();
    assert_eq!(last_two.stdout.lines().collect::<Vec<_>>(), lines[lines.len() - 2..]);

    let verify = env.clutch(["verify"]).success();
    assert_eq!(verify.out(), format!("{n} events: {n} valid, 0 rejected", n = commits.len()));
    let report = env.clutch(["verify", "--json"]).success().json();
    assert_eq!(report["org"], org_id.as_str());
    assert_eq!(report["events"], commits.len());
    assert_eq!(report["rejected"], json!([]));
}

#[test]
fn every_command_that_creates_prints_id_and_event() {
    let env = TestEnv::with_org();
    let a = env.new_task("bob", "First", &[]);
    let b = env.new_task("bob", "Second", &["--after", &a]);
    assert_ne!(a, b);
    let edit = env.clutch_as("bob", ["task", "edit", &b, "--title", "Second, renamed", "--json"]).success().json();
    assert_eq!(edit["id"], b.as_str());
    assert_eq!(edit["event"].as_str(), env.log_head().as_deref());
    let assigned = env.clutch_as("bob", ["task", "assign", &a, "jill", "--json"]).success().json();
    assert_eq!(assigned, json!({"id": a, "event": env.log_head()}));
    // A command with nothing to do writes nothing and says so.
    let head = env.log_head();
    let again = env.clutch_as("bob", ["task", "edit", &b, "--after", &a, "--json"]).success().json();
    assert_eq!(again, json!({"id": b, "event": null}));
    assert_eq!(env.clutch_as("jill", ["task", "claim", &a]).success().out(), "Nothing changed.");
    assert_eq!(env.log_head(), head);
    assert_eq!(env.tasks(&[])[1]["title"], "Second, renamed");
}

#[test]
fn acting_agent_comes_from_flag_then_env_then_git_config() {
    let env = TestEnv::with_org();
    // git config clutch.actor (set by init) is alice.
    env.clutch(["task", "new", "By default"]).success();
    let mut cmd = env.command(crate::common::CLUTCH);
    cmd.env("CLUTCH_ACTOR", "bob").args(["task", "new", "By the environment"]);
    assert!(cmd.output().expect("run clutch").status.success());
    let mut cmd = env.command(crate::common::CLUTCH);
    cmd.env("CLUTCH_ACTOR", "jill").args(["--as", "bob", "task", "new", "By the flag"]);
    assert!(cmd.output().expect("run clutch").status.success(), "--as wins over CLUTCH_ACTOR (jill may not create tasks)");
    let creators: Vec<String> = env.tasks(&[]).iter().map(|t| str_field(t, "created_by").to_string()).collect();
    assert_eq!(creators, ["alice", "bob", "bob"]);
    let authors = env.git_ok(["log", "-3", "--format=%an <%ae> %cn <%ce>", crate::common::LOG_REF]);
    assert_eq!(
        authors,
        "bob <bob@clutch.invalid> bob <bob@clutch.invalid>\nbob <bob@clutch.invalid> bob <bob@clutch.invalid>\nalice <alice@clutch.invalid> alice <alice@clutch.invalid>"
    );
}

#[test]
fn closed_stdout_ends_quietly() {
    let env = TestEnv::with_org();
    // Enough output to fill the pipe, so clutch is still writing when the reader goes away.
    let description = "lorem ipsum ".repeat(2000);
    for i in 0..6 {
        env.clutch(["task", "new", &format!("Long task {i}"), "--description", &description]).success();
    }
    let mut cmd = env.command(crate::common::CLUTCH);
    cmd.args(["log", "--json"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run clutch");
    let mut start = [0u8; 16];
    std::io::Read::read_exact(&mut child.stdout.take().expect("piped stdout"), &mut start).expect("read the start");
    assert_eq!(&start[..1], b"[");
    let out = child.wait_with_output().expect("wait for clutch");
    assert_eq!(out.status.code(), Some(0), "a closed pipe is a quiet exit: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn clutch_now_must_be_a_time() {
    let env = TestEnv::with_org();
    let head = env.log_head();
    let mut cmd = env.command(crate::common::CLUTCH);
    cmd.env("CLUTCH_NOW", "yesterday").args(["task", "new", "When"]);
    let out = cmd.output().expect("run clutch");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: CLUTCH_NOW: 'yesterday' is not an RFC 3339 time"), "{stderr}");
    assert_eq!(env.log_head(), head);
}

#[test]
fn schemas_are_printed_and_written_without_a_repository() {
    let env = TestEnv::new();
    let elsewhere = env.root.join("plain-dir");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    let printed = env.clutch_in(&elsewhere, ["schemas"]).success().json();
    let printed = printed.as_object().expect("an object of schemas");
    let required = [
        "TASK_CREATED",
        "TASK_ASSIGNED",
        "ARTIFACT_PRODUCED",
        "TEST_RUN",
        "PR_OPENED",
        "REVIEW_COMMENTED",
        "MERGE_APPROVED",
        "MERGE_BLOCKED",
        "EVAL_REPORTED",
        "HIRING_PROPOSAL",
        "FIRING_PROPOSAL",
        "DECISION_RECORDED",
        "BUDGET_UPDATED",
    ];
    for kind in required {
        assert!(printed.contains_key(&format!("{kind}.json")), "no schema for {kind}");
    }
    let dir = env.root.join("schemas");
    env.clutch_in(&elsewhere, ["schemas", "--write", dir.to_str().expect("utf-8 path")]).success();
    let mut written: Vec<String> =
        std::fs::read_dir(&dir).expect("schemas dir").map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect();
    written.sort();
    assert_eq!(written, printed.keys().cloned().collect::<Vec<_>>());
    for name in &written {
        let text = std::fs::read_to_string(dir.join(name)).expect("read schema");
        assert_eq!(serde_json::from_str::<Value>(&text).expect("schema is JSON"), printed[name], "{name}");
    }
}
