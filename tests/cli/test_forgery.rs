//! Forged events appended with plain git on top of `refs/clutch/log`. Replay trusts nothing:
//! `verify` names each forged commit with a reason and exits non-zero, the forged change never
//! reaches the state, and events written after it still apply.
//!
//! A forgery starts from a real `event.json` (`git show C:event.json`), edited, with the commit
//! message and identities clutch would write, so that exactly one thing is wrong with it.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::{commit_message, rfc3339, str_field, Ident, TestEnv, LOG_REF};

/// An event to forge: its envelope, and how the commit around it is made.
struct Forgery {
    event: Value,
    /// The name the envelope is stored under in the tree (clutch reads `event.json`).
    file_name: &'static str,
    author: Ident,
    committer: Ident,
    message: String,
    key: Option<PathBuf>,
}

impl Forgery {
    /// An event by `actor` on top of the current head, consistent in every way clutch checks:
    /// a copy of the head's `event.json` with the next clock, a fresh time, the given type,
    /// task, project and payload; author and committer `actor`; the message with its trailers.
    fn new(env: &TestEnv, actor: &str, kind: &str, task: Option<&str>, project: Option<&str>, payload: Value) -> Forgery {
        let head = env.log_head().expect("an org");
        let mut event = event_json(env, &head);
        let time = env.tick();
        event["type"] = json!(kind);
        event["actor_agent_id"] = json!(actor);
        event["at"] = json!(rfc3339(time));
        event["clock"] = json!(event["clock"].as_u64().expect("clock") + 1);
        event["task"] = json!(task);
        event["project"] = json!(project);
        event["refs"] = json!([]);
        event["payload"] = payload;
        let message = commit_message(&event, "forged");
        Forgery {
            event,
            file_name: "event.json",
            author: Ident::agent(actor, time),
            committer: Ident::agent(actor, time),
            message,
            key: None,
        }
    }

    fn signed_with(mut self, key: &Path) -> Self {
        self.key = Some(key.to_path_buf());
        self
    }

    /// Write the objects with plain git: a commit on the current head, not yet in the log.
    fn commit(&self, env: &TestEnv) -> String {
        let parent = env.log_head().expect("an org");
        let tree = tree_with(env, self.file_name, &self.event);
        env.commit_tree(&tree, &[&parent], &self.author, &self.committer, &self.message, self.key.as_deref())
    }

    /// Write the objects and move `refs/clutch/log` onto the new commit (compare-and-swap
    /// against the head it was built on). Returns the commit id.
    fn append(&self, env: &TestEnv) -> String {
        let commit = self.commit(env);
        append_commit(env, &commit);
        commit
    }
}

/// Move `refs/clutch/log` from its parent onto `commit`, as a plain `git update-ref`.
fn append_commit(env: &TestEnv, commit: &str) {
    let parent = env.log_head().expect("an org");
    assert_eq!(env.git_ok(["log", "-1", "--format=%P", commit]), parent, "{commit} is built on the head");
    env.git_ok(["update-ref", LOG_REF, commit, &parent]);
}

fn event_json(env: &TestEnv, commit: &str) -> Value {
    serde_json::from_str(&env.git_ok(["show", &format!("{commit}:event.json")])).expect("event.json is JSON")
}

/// A tree holding only `event.json`, written with `git hash-object -w` and `git mktree`.
fn event_tree(env: &TestEnv, event: &Value) -> String {
    tree_with(env, "event.json", event)
}

fn tree_with(env: &TestEnv, name: &str, event: &Value) -> String {
    let mut bytes = serde_json::to_vec_pretty(event).expect("serialize");
    bytes.push(b'\n');
    let blob = env.git_stdin(["hash-object", "-w", "--stdin"], &bytes);
    env.git_stdin(["mktree"], format!("100644 blob {blob}\t{name}\n").as_bytes())
}

fn task_created(title: &str) -> Value {
    json!({"title": title, "description": null, "after": []})
}

/// What every forgery must come to: `verify` lists exactly the `forged` commits, each with its
/// reason, and fails; `hidden` text appears in no task and nowhere in the state; and clutch
/// keeps appending valid events on top.
#[track_caller]
fn assert_rejected(env: &TestEnv, forged: &[(&str, &str)], hidden: &str) {
    let events = env.log_commits().len();
    let verify = env.clutch(["verify"]).code(1);
    assert_eq!(verify.error(), format!("{} invalid event(s) in refs/clutch/log", forged.len()));
    let lines: Vec<&str> = verify.stdout.lines().collect();
    assert_eq!(lines.len(), forged.len() + 1, "one line per rejected event and a summary:\n{verify}");
    for ((commit, reason), line) in forged.iter().zip(&lines) {
        let (listed, why) = line.split_once("  ").unwrap_or_else(|| panic!("'<commit>  <reason>' expected:\n{verify}"));
        assert_eq!(listed, *commit, "{verify}");
        assert!(why.contains(reason), "the reason for {commit} should mention {reason:?}:\n{verify}");
    }
    let valid = events - forged.len();
    assert_eq!(lines[forged.len()], format!("{events} events: {valid} valid, {} rejected", forged.len()));

    let state = env.state();
    let rejected: Vec<&str> = state["rejected"].as_array().expect("rejected").iter().map(|r| str_field(r, "commit")).collect();
    assert_eq!(rejected, forged.iter().map(|f| f.0).collect::<Vec<_>>());
    let tasks = serde_json::to_string(&env.tasks(&[])).expect("serialize");
    assert!(!tasks.contains(hidden), "{hidden:?} must not reach the task list: {tasks}");
    let mut without_rejections = state.clone();
    without_rejections["rejected"] = json!([]);
    assert!(!without_rejections.to_string().contains(hidden), "{hidden:?} must not reach the state: {state}");
    assert_eq!(state["events"], valid);
    let log = env.clutch(["log", "--json"]).success().json();
    let human = env.clutch(["log"]).success();
    for (commit, reason) in forged {
        let entry = log.as_array().expect("log").iter().find(|e| e["commit"] == *commit).expect("forged commit is in the log");
        assert_eq!(entry["valid"], false, "{entry}");
        assert!(entry["rejected"].as_str().is_some_and(|r| r.contains(reason)), "{entry}");
        let line = human.stdout.lines().find(|l| l.starts_with(&commit[..10])).unwrap_or_else(|| panic!("{commit} in:\n{human}"));
        assert!(line.contains("REJECTED"), "git clutch log marks the forged event:\n{human}");
    }
    let summary = env.clutch(["state"]).success();
    assert!(summary.stderr.contains(&format!("warning: {} event(s) in the log were refused", forged.len())), "{summary}");

    // One bad event does not hold the org hostage.
    let before = env.log_head().expect("a log");
    let after = env.new_task("bob", "Work goes on", &["--project", "core"]);
    assert_eq!(env.git_ok(["log", "-1", "--format=%P", LOG_REF]), before, "clutch appends on top of the forged commit");
    assert!(env.task_ids(&[]).contains(&after));
    let verify = env.clutch(["verify"]).code(1);
    assert!(verify.stdout.ends_with(&format!("{} events: {} valid, {} rejected\n", events + 1, valid + 1, forged.len())), "{verify}");
    env.clutch_as("bob", ["task", "assign", &after, "jill"]).success();
    env.clutch_as("jill", ["task", "start", &after]).success();
    assert_eq!(env.tasks(&["--status", "in_progress"]).len(), 1);
}

#[test]
fn unsigned_event_is_rejected_and_what_depends_on_it_fails_too() {
    let env = TestEnv::with_org();
    let forged = Forgery::new(&env, "bob", "TASK_CREATED", None, Some("core"), task_created("Unsigned forgery")).append(&env);
    assert!(env.raw_commit(&forged).header("gpgsig").is_empty());
    let signers = env.signers_file();
    env.git_verify_commit(&signers, &forged).code(1);

    // bob, with his real key, assigns the forged task: valid signature, but no such task.
    let ghost = format!("t-{}", &forged[..7]);
    let bob_key = env.key_file("bob");
    let assign = Forgery::new(&env, "bob", "TASK_ASSIGNED", Some(&ghost), Some("core"), json!({"assignee": "jill", "claim": false}))
        .signed_with(&bob_key)
        .append(&env);
    env.git_verify_commit(&signers, &assign).success();

    assert_rejected(&env, &[(&forged, "not signed"), (&assign, &format!("no task '{ghost}'"))], "Unsigned forgery");
    let out = env.clutch_as("bob", ["task", "assign", &ghost, "jill"]).code(1);
    assert!(out.error().contains(&format!("no task '{ghost}'")), "{out}");
    assert!(env.tasks(&["--assignee", "jill"]).iter().all(|t| t["id"] != ghost.as_str()));
}

#[test]
fn event_signed_by_an_unknown_key_is_rejected() {
    let env = TestEnv::with_org();
    let stranger = env.ssh_keygen("stranger", "");
    let forged = Forgery::new(&env, "bob", "TASK_CREATED", None, Some("core"), task_created("Stranger's forgery"))
        .signed_with(&stranger)
        .append(&env);
    assert_eq!(env.raw_commit(&forged).header("gpgsig").len(), 1);
    let signers = env.signers_file();
    env.git_verify_commit(&signers, &forged).code(1);
    assert_rejected(&env, &[(&forged, "not the roster's key for 'bob'")], "Stranger's forgery");
}

#[test]
fn event_signed_by_another_agents_key_is_rejected() {
    let env = TestEnv::with_org();
    let task = env.new_task("bob", "Open for claims", &["--project", "core"]);
    // bob signs an event that says jill claims the task, authored as jill.
    let bob_key = env.key_file("bob");
    let forged = Forgery::new(&env, "jill", "TASK_ASSIGNED", Some(&task), Some("core"), json!({"assignee": "jill", "claim": true}))
        .signed_with(&bob_key)
        .append(&env);
    assert_eq!(env.git_ok(["log", "-1", "--format=%an <%ae>", &forged]), "jill <jill@clutch.invalid>");
    // Plain git only says that bob signed it; binding the key to the actor is clutch's job.
    let signers = env.signers_file();
    assert!(env.git_verify_commit(&signers, &forged).success().stderr.contains("Good \"git\" signature for bob@clutch.invalid"));

    assert_rejected(&env, &[(&forged, "not the roster's key for 'jill'")], "\"assignee\":\"jill\"");
    assert_eq!(env.state()["tasks"][&task]["assignee"], Value::Null, "the forged claim did not happen");
    assert_eq!(env.state()["tasks"][&task]["status"], "open");
    // jill can still claim it herself.
    env.clutch_as("jill", ["task", "claim", &task]).success();
    assert_eq!(env.state()["tasks"][&task]["assignee"], "jill");
    assert_eq!(env.clutch(["verify", "--json"]).code(1).json()["rejected"].as_array().map(Vec::len), Some(1));
}

#[test]
fn junior_signing_a_task_creation_is_refused_by_the_role_gate() {
    let env = TestEnv::with_org();
    let jill_key = env.key_file("jill");
    let forged = Forgery::new(&env, "jill", "TASK_CREATED", None, Some("core"), task_created("Junior's own task"))
        .signed_with(&jill_key)
        .append(&env);
    // The signature is good: git accepts it. The role is what clutch refuses.
    let signers = env.signers_file();
    env.git_verify_commit(&signers, &forged).success();
    assert_rejected(&env, &[(&forged, "junior 'jill' may not create tasks")], "Junior's own task");
}

#[test]
fn edited_event_json_under_the_original_signature_is_rejected() {
    let env = TestEnv::with_org();
    let genuine_task = env.new_task("bob", "Genuine title", &["--project", "core"]);
    let genuine = env.log_head().expect("a log");
    assert_eq!(genuine_task, format!("t-{}", &genuine[..7]));
    let parent = env.git_ok(["rev-parse", &format!("{genuine}^")]);
    // Take the genuine event off the log, as if intercepted before it was pushed …
    env.git_ok(["update-ref", LOG_REF, &parent, &genuine]);
    // … edit its event.json, and put the commit back with only its tree line changed: same
    // author, committer, message and gpgsig header.
    let mut event = event_json(&env, &genuine);
    event["payload"]["title"] = json!("Tampered title");
    let tree = event_tree(&env, &event);
    let raw = env.raw_commit(&genuine);
    let old_tree = raw.header("tree")[0].to_string();
    let tampered_bytes = raw.text.replacen(&format!("tree {old_tree}\n"), &format!("tree {tree}\n"), 1);
    assert_ne!(tampered_bytes, raw.text);
    let forged = env.git_stdin(["hash-object", "-t", "commit", "-w", "--stdin"], tampered_bytes.as_bytes());
    env.git_ok(["update-ref", LOG_REF, &forged, &parent]);
    assert_eq!(env.raw_commit(&forged).header("gpgsig"), raw.header("gpgsig"));

    let signers = env.signers_file();
    env.git_verify_commit(&signers, &genuine).success();
    env.git_verify_commit(&signers, &forged).code(1);
    assert_rejected(&env, &[(&forged, "bad signature")], "Tampered title");
    assert!(!serde_json::to_string(&env.tasks(&[])).expect("serialize").contains("Genuine title"), "the genuine event is not in the log");
}

/// Signed with the actor's own key, but the commit around `event.json` disagrees with it.
#[test]
fn commit_metadata_that_disagrees_with_the_event_is_rejected() {
    let cases: [(&str, Spoil, &str); 6] = [
        ("author time", |f| f.author.time += 1, "commit author time does not match"),
        ("committer", |f| f.committer = Ident::agent("alice", f.committer.time), "commit committer 'alice <alice@clutch.invalid>'"),
        ("author email", |f| f.author.email = "bob@example.com".into(), "commit author 'bob <bob@example.com>'"),
        ("clock trailer", |f| f.message = f.message.replace("Clutch-Clock: ", "Clutch-Clock: 9"), "trailer Clutch-Clock"),
        ("actor trailer", |f| f.message = f.message.replace("Clutch-Actor: bob", "Clutch-Actor: alice"), "trailer Clutch-Actor"),
        (
            "clock",
            |f| {
                f.event["clock"] = json!(f.event["clock"].as_u64().expect("clock") - 1);
                f.message = commit_message(&f.event, "forged");
            },
            "is not greater than its parent's clock",
        ),
    ];
    assert_each_spoiled_event_rejected("Spoiled", &cases);
}

/// A change that spoils a forgery.
type Spoil = fn(&mut Forgery);

/// For each case, in an org of its own: bob's TASK_CREATED made with plain git, spoiled as the
/// case says, is rejected by `verify` for the given reason and changes nothing.
#[track_caller]
fn assert_each_spoiled_event_rejected(prefix: &str, cases: &[(&str, Spoil, &str)]) {
    for (what, spoil, reason) in cases {
        let env = TestEnv::with_org();
        let bob_key = env.key_file("bob");
        let title = format!("{prefix} {what}");
        let mut forgery = Forgery::new(&env, "bob", "TASK_CREATED", None, Some("core"), task_created(&title)).signed_with(&bob_key);
        spoil(&mut forgery);
        let forged = forgery.append(&env);
        eprintln!("case: {what}");
        assert_rejected(&env, &[(&forged, reason)], &title);
    }
}

/// The control for the cases above: the same construction, unspoiled, is a valid event.
#[test]
fn a_consistent_event_made_with_plain_git_is_valid() {
    let env = TestEnv::with_org();
    let bob_key = env.key_file("bob");
    let made = Forgery::new(&env, "bob", "TASK_CREATED", None, Some("core"), task_created("Made with plain git"))
        .signed_with(&bob_key)
        .append(&env);
    let verify = env.clutch(["verify"]).success();
    assert_eq!(verify.out(), "7 events: 7 valid, 0 rejected");
    let task = format!("t-{}", &made[..7]);
    assert_eq!(env.state()["tasks"][&task]["title"], "Made with plain git");
    assert_eq!(env.state()["tasks"][&task]["created_by"], "bob");
}

/// A signature from the right key over the right bytes, but made for another purpose
/// (`ssh-keygen -Y sign -n file`), must not pass for a commit signature.
#[test]
fn signature_in_another_namespace_is_rejected() {
    let env = TestEnv::with_org();
    let bob_key = env.key_file("bob");
    let sign_as = |namespace: &str, title: &str| -> String {
        let unsigned = Forgery::new(&env, "bob", "TASK_CREATED", None, Some("core"), task_created(title)).commit(&env);
        let raw = env.raw_commit(&unsigned);
        let payload = env.root.join(format!("payload-{namespace}"));
        std::fs::write(&payload, &raw.text).expect("write payload");
        let mut cmd = env.command("ssh-keygen");
        cmd.args(["-q", "-Y", "sign", "-n", namespace, "-f"]).arg(&bob_key).arg(&payload);
        let out = cmd.output().expect("ssh-keygen must be installed (package openssh-client)");
        assert!(out.status.success(), "ssh-keygen -Y sign: {}", String::from_utf8_lossy(&out.stderr));
        let armored = std::fs::read_to_string(format!("{}.sig", payload.display())).expect("read signature");
        let (header, message) = raw.text.split_once("\n\n").expect("header and message");
        let signed = format!("{header}\ngpgsig {}\n\n{message}", armored.trim_end().lines().collect::<Vec<_>>().join("\n "));
        let commit = env.git_stdin(["hash-object", "-t", "commit", "-w", "--stdin"], signed.as_bytes());
        append_commit(&env, &commit);
        commit
    };
    // Control: the same construction in namespace "git" is exactly a git commit signature.
    let good = sign_as("git", "Signed by hand");
    let signers = env.signers_file();
    env.git_verify_commit(&signers, &good).success();
    assert_eq!(env.clutch(["verify"]).success().out(), "7 events: 7 valid, 0 rejected");

    let forged = sign_as("file", "Signed for files");
    env.git_verify_commit(&signers, &forged).code(1);
    assert_rejected(&env, &[(&forged, "namespace is 'file'")], "Signed for files");
}

#[test]
fn senior_signing_an_agent_registration_is_refused_by_the_role_gate() {
    let env = TestEnv::with_org();
    let bob_key = env.key_file("bob");
    let alice_key = std::fs::read_to_string(format!("{}.pub", env.key_file("alice").display())).expect("alice's .pub");
    let public = alice_key.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let payload = json!({"id": "bobs-friend", "role": "ceo", "public_key": public});
    let forged = Forgery::new(&env, "bob", "AGENT_REGISTERED", None, None, payload).signed_with(&bob_key).append(&env);
    assert_rejected(&env, &[(&forged, "senior 'bob' may not add agents")], "bobs-friend");
    assert_eq!(env.state()["agents"].as_object().map(|a| a.len()), Some(5));
}

/// The write path refuses a public key that is not a point on the curve (`agent add --key`);
/// replay must refuse it too, or one such event breaks `git clutch signers` for everybody.
#[test]
fn agent_key_that_is_not_a_curve_point_is_refused_at_replay_too() {
    // y = 2 has no x on edwards25519: a well-formed ssh-ed25519 line that is no key.
    const NOT_A_POINT: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let env = TestEnv::with_org();
    let out = env.clutch(["agent", "add", "eve", "--role", "junior", "--key", NOT_A_POINT]).code(1);
    assert!(out.error().contains("not a valid curve point"), "{out}");

    let alice_key = env.key_file("alice");
    let payload = json!({"id": "eve", "role": "junior", "public_key": NOT_A_POINT});
    let forged = Forgery::new(&env, "alice", "AGENT_REGISTERED", None, None, payload).signed_with(&alice_key).append(&env);
    let signers = env.clutch(["signers"]);
    assert_eq!(signers.status, 0, "one bad roster entry must not break the allowed-signers file:\n{signers}");
    assert_eq!(signers.stdout.lines().count(), 5, "{signers}");
    assert_rejected(&env, &[(&forged, "key")], "AAAAC3NzaC1lZDI1NTE5AAAAIAIAAAAA");
}

/// A forged event's clock is a claim like any other: an invalid event claiming the largest
/// clock must not make every later event impossible.
#[test]
fn clock_claimed_by_a_rejected_event_does_not_hold_the_org_hostage() {
    let env = TestEnv::with_org();
    let mut forgery = Forgery::new(&env, "bob", "TASK_CREATED", None, Some("core"), task_created("Clock bomb"));
    forgery.event["clock"] = json!(u64::MAX);
    forgery.message = commit_message(&forgery.event, "forged");
    let forged = forgery.append(&env);
    assert_rejected(&env, &[(&forged, "not signed")], "Clock bomb");
}

/// Trailers repeat the event for plain `git log --grep`; a trailer that contradicts
/// `event.json` (here a second `Clutch-Actor`) would let git readers pin bob's event on alice.
#[test]
fn contradicting_trailers_are_rejected() {
    let env = TestEnv::with_org();
    let bob_key = env.key_file("bob");
    let mut forgery = Forgery::new(&env, "bob", "TASK_CREATED", None, Some("core"), task_created("Whose is it")).signed_with(&bob_key);
    forgery.message = forgery.message.replace("Clutch-Actor: bob\n", "Clutch-Actor: bob\nClutch-Actor: alice\n");
    let forged = forgery.append(&env);
    assert_eq!(env.git_ok(["log", "--format=%s", "--grep=^Clutch-Actor: alice$", "-1", LOG_REF]), "TASK_CREATED: forged");
    assert_rejected(&env, &[(&forged, "Clutch-Actor")], "Whose is it");
}

/// The org id is pinned in git config at init: a log with another genesis is refused, for
/// reading and for writing.
#[test]
fn a_log_with_another_root_is_refused() {
    let env = TestEnv::with_org();
    let org = env.git_ok(["config", "clutch.orgId"]);
    let other = env.root.join("other");
    env.git(["init", "--quiet", "-b", "main", other.to_str().expect("utf-8 path")]).success();
    let other_org = env.clutch_in(&other, ["init", "--name", "rival", "--founder", "mallory"]).success().out().to_string();
    env.git_ok(["fetch", "--quiet", "../other", &format!("+{LOG_REF}:{LOG_REF}")]);
    assert_eq!(env.log_head().as_deref(), Some(other_org.as_str()));
    for args in [&["task", "list"][..], &["state", "--json"], &["verify"], &["task", "new", "Sneak in"]] {
        let out = env.clutch(args).code(1);
        assert!(out.error().contains(&org) && out.error().contains(&other_org), "names both orgs:\n{out}");
    }
    assert_eq!(env.log_head().as_deref(), Some(other_org.as_str()), "nothing was written on the foreign log");
}

/// Signed with the actor's own key, but `event.json` itself is not a valid envelope.
#[test]
fn malformed_event_json_is_rejected() {
    let cases: [(&str, Spoil, &str); 5] = [
        ("unknown type", |f| f.event["type"] = json!("TASK_EXPLODED"), "unknown event type 'TASK_EXPLODED'"),
        ("unknown field", |f| f.event["extra"] = json!(1), "unknown field `extra`"),
        ("payload", |f| f.event["payload"] = json!({"titel": "typo"}), "payload of TASK_CREATED is malformed"),
        ("schema", |f| f.event["schema"] = json!(9), "schema 9"),
        ("no event.json", |f| f.file_name = "evil.json", "no event.json"),
    ];
    assert_each_spoiled_event_rejected("Malformed", &cases);
}

#[test]
fn a_huge_event_json_is_refused_without_being_read() {
    let env = TestEnv::with_org();
    let old = env.log_head().expect("a log");
    // 2 MiB of envelope, signed by bob's real key: replay refuses it from its size alone.
    let blob = env.git_stdin(["hash-object", "-w", "--stdin"], &vec![b' '; 2 << 20]);
    let tree = env.git_stdin(["mktree"], format!("100644 blob {blob}\tevent.json\n").as_bytes());
    let bob = Ident::agent("bob", env.tick());
    let key = env.key_file("bob");
    let huge = env.commit_tree(&tree, &[&old], &bob, &bob, "TASK_CREATED: huge\n", Some(&key));
    env.git_ok(["update-ref", "refs/clutch/log", &huge, &old]);
    let out = env.clutch(["verify"]).code(1);
    assert!(out.stdout.contains(&format!("{huge}  event.json is 2097152 bytes; at most 1048576 are read")), "{out}");
    // What comes after it still applies.
    let task = env.new_task("bob", "after the huge one", &[]);
    assert!(env.task_ids(&[]).contains(&task));
}
