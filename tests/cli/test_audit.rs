//! The log is auditable without clutch: plain git verifies every signature with the
//! allowed-signers file `git clutch signers` prints, reads subjects and trailers, and
//! `git commit-tree -S` with the same key, tree, identity, time and message makes the very
//! same commit as clutch did (DESIGN §8).

use std::collections::BTreeMap;

use crate::common::{str_field, Ident, TestEnv, LOG_REF};

/// An org with some of everything: tasks with dependencies, an assignment, a claim, an
/// artifact with content under `files/`, status changes by a junior.
fn busy_org() -> (TestEnv, String) {
    let env = TestEnv::with_org();
    let parser = env.new_task("bob", "Write the parser", &["--project", "core"]);
    let docs = env.new_task("alice", "Document the parser", &["--after", &parser]);
    env.clutch_as("bob", ["task", "assign", &parser, "jill"]).success();
    env.clutch_as("jill", ["task", "start", &parser]).success();
    let report = env.root.join("report.txt");
    std::fs::write(&report, "all green\n").expect("write report");
    env.clutch_as("jill", ["artifact", "add", &parser, report.to_str().expect("utf-8 path"), "--kind", "log"]).success();
    env.clutch_as("jill", ["task", "done", &parser]).success();
    env.clutch_as("kim", ["task", "claim", &docs]).success();
    (env, parser)
}

#[test]
fn signers_lists_the_roster_for_git() {
    let env = TestEnv::with_org();
    let out = env.clutch(["signers"]).success();
    let state = env.state();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let agents = state["agents"].as_object().expect("agents");
    assert_eq!(lines.len(), agents.len(), "{out}");
    for (line, (id, agent)) in lines.iter().zip(agents) {
        assert_eq!(*line, format!("{id}@clutch.invalid namespaces=\"git\" {}", str_field(agent, "public_key")));
    }
}

#[test]
fn plain_git_verifies_every_event() {
    let (env, _) = busy_org();
    let signers = env.signers_file();
    let commits = env.log_commits();
    assert!(commits.len() >= 13, "the org should have a real log, got {} commits", commits.len());
    for commit in &commits {
        let author = env.git_ok(["log", "-1", "--format=%ae", commit]);
        let out = env.git_verify_commit(&signers, commit).success();
        assert!(
            out.stderr.contains(&format!("Good \"git\" signature for {author} with ED25519 key")),
            "git verify-commit {commit} should name {author}:\n{out}"
        );
    }
    // The same, through git log: every commit 'G' (good), signed by its author.
    let mut cmd = env.command("git");
    cmd.arg("-c").arg(format!("gpg.ssh.allowedSignersFile={}", signers.display())).args(["log", "--format=%G? %GS %ae", LOG_REF]);
    let out = cmd.output().expect("run git log");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), commits.len(), "{text}");
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts.len(), 3, "{line}");
        assert_eq!(parts[0], "G", "every event is a good signature: {line}");
        assert_eq!(parts[1], parts[2], "the signer is the author: {line}");
    }
}

#[test]
fn plain_git_log_shows_subjects_and_trailers() {
    let (env, parser) = busy_org();
    let subjects = env.git_ok(["log", "--reverse", "--format=%s", LOG_REF]);
    let subjects: Vec<&str> = subjects.lines().collect();
    assert_eq!(subjects[0], "ORG_CREATED: acme founded by alice");
    assert_eq!(subjects[1], "AGENT_REGISTERED: bob joins as senior");
    assert_eq!(subjects[5], "PROJECT_CREATED: core");
    assert_eq!(subjects[6], "TASK_CREATED: Write the parser");
    assert_eq!(subjects[7], "TASK_CREATED: Document the parser");
    assert_eq!(subjects[8], format!("TASK_ASSIGNED {parser}: assigned to jill"));
    assert_eq!(subjects[9], format!("TASK_STATUS_CHANGED {parser}: in_progress"));
    assert!(subjects[10].starts_with(&format!("ARTIFACT_PRODUCED {parser}: report.txt")), "{}", subjects[10]);

    // Trailers repeat the key fields; git parses them as trailers.
    let format = "--format=%H%x09%(trailers:key=Clutch-Event,valueonly,separator=)%x09%(trailers:key=Clutch-Actor,valueonly,separator=)\
                  %x09%(trailers:key=Clutch-Task,valueonly,separator=)%x09%(trailers:key=Clutch-Clock,valueonly,separator=)\
                  %x09%(trailers:key=Clutch-Project,valueonly,separator=)";
    let rows = env.git(["log", "--reverse", format, LOG_REF]).success().stdout;
    let mut clock = 0;
    for row in rows.lines() {
        let cells: Vec<&str> = row.split('\t').collect();
        assert_eq!(cells.len(), 6, "{row}");
        let event: serde_json::Value =
            serde_json::from_str(&env.git_ok(["show", &format!("{}:event.json", cells[0])])).expect("event.json is JSON");
        assert_eq!(cells[1], str_field(&event, "type"), "Clutch-Event of {row}");
        assert_eq!(cells[2], str_field(&event, "actor_agent_id"), "Clutch-Actor of {row}");
        assert_eq!(cells[3], event["task"].as_str().unwrap_or(""), "Clutch-Task of {row}");
        assert_eq!(cells[5], event["project"].as_str().unwrap_or(""), "Clutch-Project of {row}");
        clock += 1;
        assert_eq!(cells[4], clock.to_string(), "Clutch-Clock of {row}");
        assert_eq!(env.git_ok(["log", "-1", "--format=%an <%ae> %at|%cn <%ce> %ct", cells[0]]), {
            let at = env.git_ok(["log", "-1", "--format=%at", cells[0]]);
            let who = str_field(&event, "actor_agent_id");
            format!("{who} <{who}@clutch.invalid> {at}|{who} <{who}@clutch.invalid> {at}")
        });
    }

    // git log --grep finds an agent's events without clutch.
    let jill = env.git_ok(["log", "--format=%s", "--grep=^Clutch-Actor: jill$", LOG_REF]);
    assert_eq!(jill.lines().count(), 3, "jill started, attached and finished:\n{jill}");
    assert!(jill.lines().all(|s| s.contains(&parser)), "{jill}");
    let created = env.git_ok(["log", "--format=%s", "--grep=^Clutch-Event: TASK_CREATED$", LOG_REF]);
    assert_eq!(created, "TASK_CREATED: Document the parser\nTASK_CREATED: Write the parser");
}

#[test]
fn event_time_is_commit_time() {
    let env = TestEnv::with_org();
    env.new_task("bob", "Timed", &[]);
    let head = env.log_head().expect("a log");
    let event: serde_json::Value = serde_json::from_str(&env.git_ok(["show", &format!("{head}:event.json")])).expect("JSON");
    let raw = env.raw_commit(&head);
    let author = Ident::parse(raw.header("author")[0]);
    assert_eq!(crate::common::rfc3339(author.time), str_field(&event, "at"));
    assert_eq!(raw.header("committer"), raw.header("author"));
    // The harness pins CLUTCH_NOW one minute later for each command; the 7th command made it.
    assert_eq!(str_field(&event, "at"), "2026-11-24T08:06:00Z");
}

#[test]
fn git_commit_tree_makes_the_same_commit_as_clutch() {
    let (env, parser) = busy_org();
    let commits = env.log_commits();
    // One commit of every kind and every signer: the root, each event type.
    let mut by_kind: BTreeMap<String, String> = BTreeMap::new();
    for commit in &commits {
        let subject = env.git_ok(["log", "-1", "--format=%s", commit]);
        let kind = subject.split([' ', ':']).next().expect("a subject").to_string();
        by_kind.entry(kind).or_insert_with(|| commit.clone());
    }
    let artifact = by_kind.get("ARTIFACT_PRODUCED").expect("an artifact event").clone();
    assert_eq!(env.git_ok(["show", &format!("{artifact}:files/report.txt")]), "all green");
    assert!(env.git_ok(["log", "-1", "--format=%s", &artifact]).contains(&parser));
    assert_eq!(by_kind.len(), 7, "{by_kind:?}");
    let mut reproduced = Vec::new();
    for commit in by_kind.values().chain(commits.last()) {
        let raw = env.raw_commit(commit);
        let author = Ident::parse(raw.header("author")[0]);
        let committer = Ident::parse(raw.header("committer")[0]);
        let tree = raw.header("tree")[0].to_string();
        let parents = raw.header("parent");
        assert_eq!(raw.header("gpgsig").len(), 1, "clutch commits carry one gpgsig header:\n{}", raw.text);
        assert!(raw.header("gpgsig")[0].starts_with("-----BEGIN SSH SIGNATURE-----"), "{}", raw.text);
        let key = env.key_file(&author.name);
        let again = env.commit_tree(&tree, &parents, &author, &committer, raw.message(), Some(&key));
        assert_eq!(&again, commit, "git commit-tree -S with {}'s key reproduces {commit}:\n{}", author.name, raw.text);
        reproduced.push(author.name);
    }
    for signer in ["alice", "bob", "jill", "kim"] {
        assert!(reproduced.iter().any(|r| r == signer), "{signer} should sign one of the reproduced commits: {reproduced:?}");
    }
}
