//! Issue 6 through the real binary: the age vault (`secret …`), secrets handed to runs and kept
//! out of everything clutch writes or prints, agent signing keys kept in the vault, and the
//! policies a runtime enforces or refuses.
//!
//! No test prints a secret value. Every value comes from `test_secret` (tests/scan_secrets.py
//! fails the suite when its prefix shows up in the test output), and every check that a value
//! is absent shows what it searched with the value replaced by `<VALUE>`. Commands that could
//! print a value are checked for it before their output is shown by any other assertion.

use std::ffi::OsStr;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::{finished, parse_log, rfc3339, run_with_stdin, str_field, test_secret, CommandOutput, Entry, TestEnv, CLUTCH};

// ---------------------------------------------------------------------------------------------
// Helpers

/// The lines of `text` that hold `value`, with the value replaced: safe to print.
fn redacted(text: &str, value: &str) -> String {
    let lines: Vec<String> = text.lines().filter(|l| l.contains(value)).take(20).map(|l| l.replace(value, "<VALUE>")).collect();
    lines.join("\n")
}

/// Assert that `text` does not hold `value`, showing only a redacted view when it does.
#[track_caller]
fn assert_hidden(text: &str, value: &str, what: &str) {
    assert!(!text.contains(value), "{what} holds the secret value:\n{}", redacted(text, value));
}

/// Assert that neither stream of a command holds `value`; returns the output for further
/// checks, which may then print it.
#[track_caller]
fn hidden(out: CommandOutput, value: &str, what: &str) -> CommandOutput {
    assert_hidden(&out.stdout, value, &format!("stdout of {what}"));
    assert_hidden(&out.stderr, value, &format!("stderr of {what}"));
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What unlocks the vault for one command.
enum Key<'a> {
    /// Neither CLUTCH_SECRET_KEY nor CLUTCH_SECRET_KEY_FILE.
    Unset,
    /// CLUTCH_SECRET_KEY set to this text (it wins over the harness's key file).
    Text(&'a str),
}

/// `git clutch ARGS…` with `input` on stdin and the vault key given by `key` instead of the
/// harness's.
fn clutch_key<I, S>(env: &TestEnv, key: Key<'_>, args: I, input: &[u8]) -> CommandOutput
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = env.command(CLUTCH);
    cmd.env("CLUTCH_NOW", rfc3339(env.tick())).env_remove("CLUTCH_SECRET_KEY_FILE").args(args);
    if let Key::Text(text) = key {
        cmd.env("CLUTCH_SECRET_KEY", text);
    }
    run_with_stdin(cmd, input)
}

/// A fresh age identity, as the text `AGE-SECRET-KEY-1…`.
fn other_identity() -> String {
    let identity = age::x25519::Identity::generate();
    age::secrecy::ExposeSecret::expose_secret(&identity.to_string()).to_string()
}

/// The recipient (`age1…`) named in an identity file's `# public key:` line.
fn recipient_of(identity_file: &Path) -> String {
    let text = std::fs::read_to_string(identity_file).expect("read the identity file");
    text.lines().find_map(|l| l.strip_prefix("# public key: ")).expect("a public key line").trim().to_string()
}

fn vault_path(env: &TestEnv) -> PathBuf {
    env.clutch_home.join("vault.age")
}

/// The vault decrypted by the `age` CLI with `identity`, as JSON. Never printed.
#[track_caller]
fn age_decrypt(env: &TestEnv, identity: &Path) -> Value {
    let mut cmd = env.command("age");
    cmd.arg("-d").arg("-i").arg(identity).arg(vault_path(env));
    let out = cmd.output().expect("the age CLI must be installed (Debian package age)");
    assert!(out.status.success(), "age -d failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| panic!("age -d did not print JSON ({err})"))
}

/// `secret list --json`.
#[track_caller]
fn listed(env: &TestEnv) -> Vec<Value> {
    match env.clutch(["secret", "list", "--json"]).success().json() {
        Value::Array(items) => items,
        other => panic!("secret list --json is not an array: {other}"),
    }
}

/// The fingerprint `secret list --json` gives `name`.
#[track_caller]
fn fingerprint(env: &TestEnv, name: &str) -> String {
    let all = listed(env);
    let found = all.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("{name} is listed: {all:?}"));
    str_field(found, "fingerprint").to_string()
}

/// Every object of the repository (reachable or not) as `git cat-file --batch` prints it.
fn all_objects(env: &TestEnv) -> String {
    env.git(["cat-file", "--batch-all-objects", "--batch"]).success().stdout
}

/// Assert that nothing git holds — any ref's history with its diffs, any object at all —
/// contains `value`.
#[track_caller]
fn assert_repository_hides(env: &TestEnv, value: &str) {
    let refs = env.git_ok(["for-each-ref", "--format=%(refname)"]);
    assert!(refs.lines().any(|r| r.starts_with("refs/clutch/")), "the log refs exist: {refs}");
    assert_hidden(&env.git(["log", "-p", "--all"]).success().stdout, value, "git log -p --all");
    assert_hidden(&all_objects(env), value, "the repository's objects");
}

/// A first commit on `main`, so runs have something to start from. Returns its id.
fn seed_main(env: &TestEnv) -> String {
    std::fs::write(env.repo.join("README.md"), "acme\n").expect("write README");
    env.git_ok(["add", "README.md"]);
    env.git_ok(["commit", "-q", "-m", "initial commit"]);
    env.git_ok(["rev-parse", "refs/heads/main"])
}

/// `TestEnv::with_org` (keys made as plain files) with a commit on `main`; returns main's tip.
fn org() -> (TestEnv, String) {
    let env = TestEnv::with_org();
    let main = seed_main(&env);
    (env, main)
}

fn events(env: &TestEnv) -> Vec<Entry> {
    parse_log(&env.clutch(["log", "--json"]).success())
}

/// The events of `kind` about `task`.
fn events_of<'a>(log: &'a [Entry], kind: &str, task: &str) -> Vec<&'a Entry> {
    log.iter().filter(|e| e.kind() == kind && e.task() == Some(task)).collect()
}

/// Where a branch points, if it exists.
fn branch_tip(env: &TestEnv, branch: &str) -> Option<String> {
    let out = env.git(["rev-parse", "--verify", "--quiet", &format!("refs/heads/{branch}")]);
    (out.status == 0).then(|| out.out().to_string())
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

/// Make `agent` a subprocess agent running `command` with the extra settings (as the CEO).
fn subprocess_agent(env: &TestEnv, agent: &str, command: &str, extra: &[&str]) {
    let mut args = vec!["agent".to_string(), "config".into(), agent.into(), "--runtime".into(), "subprocess".into()];
    args.extend(["--runtime-opt".to_string(), format!("command={command}")]);
    for opt in extra {
        args.extend(["--runtime-opt".to_string(), opt.to_string()]);
    }
    env.clutch(args).success();
}

#[track_caller]
fn assert_no_worktree_left(env: &TestEnv) {
    let dir = env.repo.join(".clutch").join("worktrees");
    let left: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.map(|e| e.expect("directory entry").path()).collect(),
        Err(_) => Vec::new(),
    };
    assert!(left.is_empty(), "no worktree is left under .clutch/worktrees: {left:?}");
}

/// The error line (`error: …`) of a command's stderr.
#[track_caller]
fn error_line(out: &CommandOutput) -> &str {
    out.stderr.lines().find_map(|l| l.strip_prefix("error: ")).unwrap_or_else(|| panic!("no 'error: ' line on stderr:\n{out}"))
}

/// After a run that did not succeed: no commit recorded or made, no PR, no test run, no
/// worktree, and `main` where it was.
#[track_caller]
fn assert_nothing_half_written(env: &TestEnv, agent: &str, task: &str, main_before: &str, run: &str) {
    let log = events(env);
    let end = finished(&log, run);
    assert_eq!(end.payload()["commit"], Value::Null, "a run that did not succeed records no commit: {}", end.event);
    assert_eq!(env.git_ok(["rev-parse", "refs/heads/main"]), main_before, "main did not move");
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

/// The private key files (not `.pub`) under `$CLUTCH_HOME/keys`.
fn private_key_files(env: &TestEnv) -> Vec<String> {
    let dir = env.clutch_home.join("keys");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()))
        .map(|e| e.expect("directory entry").file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".pub"))
        .collect();
    names.sort();
    names
}

/// The `<agent>-<16 hex>` stem of `agent`'s `.pub` file under `$CLUTCH_HOME/keys`.
#[track_caller]
fn key_stem(env: &TestEnv, agent: &str) -> String {
    let dir = env.clutch_home.join("keys");
    let stems: Vec<String> = std::fs::read_dir(&dir)
        .expect("list the keys")
        .map(|e| e.expect("directory entry").file_name().to_string_lossy().into_owned())
        .filter_map(|name| name.strip_suffix(".pub").map(str::to_string))
        .filter(|stem| stem.strip_prefix(agent).and_then(|r| r.strip_prefix('-')).is_some_and(|id| id.len() == 16))
        .collect();
    assert_eq!(stems.len(), 1, "one .pub for {agent}: {stems:?}");
    stems[0].clone()
}

/// Assert plain git accepts the log head's signature as `agent`'s.
#[track_caller]
fn assert_head_signed_by(env: &TestEnv, agent: &str) {
    let signers = env.signers_file();
    let head = env.log_head().expect("a log");
    let verified = env.git_verify_commit(&signers, &head).success();
    assert!(verified.stderr.contains(&format!("Good \"git\" signature for {agent}")), "signed by {agent}:\n{verified}");
}

// ---------------------------------------------------------------------------------------------
// 0. The suite's own leak scan can see a leak

#[test]
fn secrets_the_suite_leak_scan_sees_an_object_or_a_kept_file_but_not_a_worktree_file() {
    let env = TestEnv::with_org();
    let value = test_secret("scan-probe");
    std::fs::write(env.repo.join("notes.txt"), &value).expect("write a worktree file");
    assert_eq!(env.leaks(), Vec::<String>::new(), "a file in the work tree is the user's, not a leak");

    let blob = env.git_stdin(["hash-object", "-w", "--stdin"], value.as_bytes());
    let leaks = env.leaks();
    assert!(leaks.len() == 1 && leaks[0].starts_with("an object of ") && leaks[0].ends_with("/repo/.git"), "blob {blob}: {leaks:?}");
    env.git_ok(["prune", "--expire=now"]);
    assert_eq!(env.leaks(), Vec::<String>::new(), "the pruned blob is gone");

    let kept = env.clutch_home.join("left-behind.json");
    std::fs::write(&kept, format!("{{\"token\": \"{value}\"}}")).expect("write a file in CLUTCH_HOME");
    assert_eq!(env.leaks(), vec![kept.display().to_string()], "a file clutch keeps is scanned");
    std::fs::remove_file(&kept).expect("remove it");
    assert_eq!(env.leaks(), Vec::<String>::new(), "and the world is clean again for the scan at drop");
}

// ---------------------------------------------------------------------------------------------
// 1. The vault and the age CLI

#[test]
fn secrets_set_list_rotate_rm_and_the_age_cli_opens_the_vault() {
    let env = TestEnv::new();
    let identity = env.unlock_vault();
    let value = test_secret("API_TOKEN");

    let set = hidden(env.clutch_stdin(["secret", "set", "API_TOKEN", "--json"], value.as_bytes()), &value, "secret set").success();
    let set = set.json();
    assert_eq!((&set["name"], &set["version"]), (&json!("API_TOKEN"), &json!(1)), "{set}");
    let first = str_field(&set, "fingerprint").to_string();
    assert!(first.len() == 16 && first.bytes().all(|b| b.is_ascii_hexdigit()), "a fingerprint is 16 hex digits: {first}");
    env.set_secret("OTHER_TOKEN", &test_secret("OTHER_TOKEN"));

    // list: names, fingerprints and versions, never a value (nor the salt).
    let out = hidden(env.clutch(["secret", "list", "--json"]), &value, "secret list --json").success();
    let items = out.json();
    let items = items.as_array().expect("an array");
    assert_eq!(items.iter().map(|s| str_field(s, "name")).collect::<Vec<_>>(), ["API_TOKEN", "OTHER_TOKEN"]);
    for item in items {
        let keys: Vec<&String> = item.as_object().expect("an object").keys().collect();
        assert_eq!(keys, ["fingerprint", "name", "set_at", "version"], "exactly these fields: {item}");
    }
    assert_eq!((&items[0]["fingerprint"], &items[0]["version"]), (&json!(first), &json!(1)));
    let table = hidden(env.clutch(["secret", "list"]), &value, "secret list").success();
    let header: Vec<&str> = table.stdout.lines().next().expect("a header").split_whitespace().collect();
    assert_eq!(header, ["NAME", "FINGERPRINT", "VERSION", "SET"], "{table}");
    let row: Vec<&str> = table.stdout.lines().nth(1).expect("a row").split_whitespace().collect();
    assert_eq!(&row[..3], ["API_TOKEN", first.as_str(), "1"], "{table}");

    // The file: encrypted, 0600, and opened by the age CLI with the identity file.
    let path = vault_path(&env);
    let bytes = std::fs::read(&path).expect("the vault file");
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"), "an age file");
    assert!(!bytes.windows(value.len()).any(|w| w == value.as_bytes()), "the value is not in the file in the clear");
    assert_eq!(std::fs::metadata(&path).expect("vault metadata").permissions().mode() & 0o777, 0o600, "the vault is 0600");
    let doc = age_decrypt(&env, &identity);
    assert_eq!(doc["format"], "clutch-vault/1");
    let entry = &doc["secrets"]["API_TOKEN"];
    assert!(entry["value"].as_str() == Some(value.as_str()), "age -d gives back the value that was set");
    assert_eq!(entry["version"], 1);
    // The fingerprint is the first 16 hex digits of SHA-256(salt ‖ 0 ‖ value).
    let mut hasher = Sha256::new();
    hasher.update(str_field(entry, "salt").as_bytes());
    hasher.update([0]);
    hasher.update(value.as_bytes());
    assert_eq!(hex(&hasher.finalize())[..16], first, "the listed fingerprint is the salted hash of the value");

    // rotate: a new value, a new fingerprint, the next version.
    let rotated_value = test_secret("API_TOKEN");
    let out = env.clutch_stdin(["secret", "rotate", "API_TOKEN", "--json"], rotated_value.as_bytes());
    let rotated = hidden(hidden(out, &value, "secret rotate"), &rotated_value, "secret rotate").success().json();
    assert_eq!(rotated["version"], 2, "{rotated}");
    let second = str_field(&rotated, "fingerprint").to_string();
    assert_ne!(second, first, "a new value has a new fingerprint");
    assert_eq!(fingerprint(&env, "API_TOKEN"), second);
    let doc = age_decrypt(&env, &identity);
    assert!(doc["secrets"]["API_TOKEN"]["value"].as_str() == Some(rotated_value.as_str()), "the vault holds the rotated value");
    // The same value again: still a new fingerprint (a new salt), so versions can be told apart.
    let again = env.clutch_stdin(["secret", "rotate", "API_TOKEN", "--json"], rotated_value.as_bytes());
    let again = hidden(again, &rotated_value, "secret rotate").success().json();
    assert_eq!(again["version"], 3);
    assert_ne!(str_field(&again, "fingerprint"), second, "each version is salted afresh");
    let out = env.clutch_stdin(["secret", "rotate", "NOT_THERE"], rotated_value.as_bytes()).code(1);
    assert!(out.error().contains("no secret 'NOT_THERE' to rotate"), "{out}");

    // rm.
    let removed = env.clutch(["secret", "rm", "API_TOKEN", "--json"]).success().json();
    assert_eq!(removed, json!({"name": "API_TOKEN", "removed": true}));
    assert_eq!(listed(&env).iter().map(|s| str_field(s, "name").to_string()).collect::<Vec<_>>(), ["OTHER_TOKEN"]);
    let doc = age_decrypt(&env, &identity);
    assert!(doc["secrets"].get("API_TOKEN").is_none(), "the age CLI no longer finds it either");
    let out = env.clutch(["secret", "rm", "API_TOKEN"]).code(1);
    assert!(out.error().contains("no secret 'API_TOKEN'"), "{out}");
    assert_eq!(std::fs::metadata(&path).expect("vault metadata").permissions().mode() & 0o777, 0o600, "still 0600 after rewrites");
}

#[test]
fn secrets_a_vault_written_by_the_age_cli_is_read_and_kept_by_clutch() {
    let env = TestEnv::new();
    let identity = env.unlock_vault();
    let value = test_secret("DEPLOY_KEY");
    let salt = "00112233445566778899aabbccddeeff";
    let doc = json!({
        "format": "clutch-vault/1",
        "secrets": {"DEPLOY_KEY": {"value": value, "salt": salt, "set_at": "2026-11-01T00:00:00Z", "version": 4}},
    });
    std::fs::create_dir_all(&env.clutch_home).expect("make CLUTCH_HOME");
    let mut age = env.command("age");
    age.arg("-r").arg(recipient_of(&identity)).arg("-o").arg(vault_path(&env));
    run_with_stdin(age, doc.to_string().as_bytes()).success();

    let items = listed(&env);
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update([0]);
    hasher.update(value.as_bytes());
    let expected = hex(&hasher.finalize())[..16].to_string();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!((&items[0]["name"], &items[0]["fingerprint"], &items[0]["version"]), (&json!("DEPLOY_KEY"), &json!(expected), &json!(4)));

    // clutch writes it back; the age CLI still opens it, with the first secret intact.
    env.set_secret("SECOND", &test_secret("SECOND"));
    let doc = age_decrypt(&env, &identity);
    assert!(doc["secrets"]["DEPLOY_KEY"]["value"].as_str() == Some(value.as_str()), "the age-written secret survives a clutch write");
    assert_eq!(doc["secrets"]["DEPLOY_KEY"]["version"], 4);
    assert_eq!(doc["secrets"]["SECOND"]["version"], 1);
}

#[test]
fn secrets_rekey_moves_the_vault_to_a_new_identity_then_a_passphrase() {
    let env = TestEnv::new();
    let old = env.unlock_vault();
    let value = test_secret("API_TOKEN");
    env.set_secret("API_TOKEN", &value);
    let fp = fingerprint(&env, "API_TOKEN");

    let new = other_identity();
    let new_file = env.root.join("new-key.txt");
    let public = age::x25519::Identity::from_str(&new).expect("an identity").to_public();
    std::fs::write(&new_file, format!("# public key: {public}\n{new}\n")).expect("write the new identity");
    let out = env.clutch(["secret", "rekey", "--to-identity-file"]).code(2);
    assert!(out.stderr.contains("--to-identity-file"), "{out}");
    let out = env.clutch([OsStr::new("secret"), OsStr::new("rekey"), OsStr::new("--to-identity-file"), new_file.as_os_str()]).success();
    assert!(out.out().contains("CLUTCH_SECRET_KEY_FILE"), "it says how to unlock from now on: {out}");
    let doc = age_decrypt(&env, &new_file);
    assert!(doc["secrets"]["API_TOKEN"]["value"].as_str() == Some(value.as_str()), "the new identity opens it");
    let refused = env.clutch(["secret", "list"]).code(1);
    assert!(
        refused.error().starts_with("CLUTCH_SECRET_KEY does not open the vault"),
        "the old identity ({}) no longer does: {refused}",
        old.display()
    );

    let passphrase = "correct horse battery staple";
    let out = clutch_key(&env, Key::Text(&new), ["secret", "rekey", "--to-passphrase"], passphrase.as_bytes()).success();
    assert!(out.out().contains("CLUTCH_SECRET_KEY to the new passphrase"), "{out}");
    let items = match clutch_key(&env, Key::Text(passphrase), ["secret", "list", "--json"], b"").success().json() {
        Value::Array(items) => items,
        other => panic!("not an array: {other}"),
    };
    assert_eq!((&items[0]["name"], &items[0]["fingerprint"]), (&json!("API_TOKEN"), &json!(fp)), "the secret is as it was");
    let out = clutch_key(&env, Key::Text(&new), ["secret", "list"], b"").code(1);
    assert!(out.error().starts_with("CLUTCH_SECRET_KEY is an age identity, but the vault"), "{out}");
    let out = clutch_key(&env, Key::Text("wrong horse battery staple"), ["secret", "list"], b"").code(1);
    assert!(out.error().starts_with("CLUTCH_SECRET_KEY does not open the vault"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// 2. Wrong, missing and misused keys and values

#[test]
fn secrets_wrong_or_missing_key_is_refused_and_the_vault_is_untouched() {
    let env = TestEnv::new();
    env.unlock_vault();
    let value = test_secret("API_TOKEN");
    env.set_secret("API_TOKEN", &value);
    let path = vault_path(&env);
    let before = std::fs::read(&path).expect("the vault file");
    let fp = fingerprint(&env, "API_TOKEN");
    let attempt = test_secret("ATTEMPT");

    let other = other_identity();
    let commands: [&[&str]; 4] =
        [&["secret", "list"], &["secret", "set", "API_TOKEN"], &["secret", "rotate", "API_TOKEN"], &["secret", "rm", "API_TOKEN"]];
    for args in commands {
        let out = clutch_key(&env, Key::Text(&other), args, attempt.as_bytes());
        let out = hidden(hidden(out, &value, "a refused command"), &attempt, "a refused command").code(1);
        assert!(out.error().starts_with("CLUTCH_SECRET_KEY does not open the vault"), "{args:?}: {out}");
        assert!(out.stderr.contains("hint: "), "with a hint: {out}");
        assert_eq!(std::fs::read(&path).expect("the vault file"), before, "{args:?} with another identity left the vault as it was");
    }
    let out = clutch_key(&env, Key::Text("a passphrase long enough"), ["secret", "set", "API_TOKEN"], attempt.as_bytes()).code(1);
    assert!(out.error().starts_with("CLUTCH_SECRET_KEY is a passphrase, but the vault"), "{out}");
    assert!(out.error().contains("age identity"), "{out}");
    let out = clutch_key(&env, Key::Text("short"), ["secret", "list"], b"").code(1);
    assert!(out.error().contains("CLUTCH_SECRET_KEY is too short"), "{out}");
    for args in commands {
        let out = hidden(clutch_key(&env, Key::Unset, args, attempt.as_bytes()), &attempt, "a locked command").code(1);
        assert_eq!(out.error(), "the vault is locked: CLUTCH_SECRET_KEY is not set", "{args:?}");
        assert!(out.stderr.contains("CLUTCH_SECRET_KEY_FILE"), "the hint names both ways to unlock: {out}");
    }
    let mut cmd = env.command(CLUTCH);
    cmd.env("CLUTCH_SECRET_KEY_FILE", env.root.join("no-such-key.txt")).args(["secret", "list"]);
    let out = run_with_stdin(cmd, b"").code(1);
    assert!(out.error().contains("cannot read CLUTCH_SECRET_KEY_FILE"), "{out}");
    assert_eq!(std::fs::read(&path).expect("the vault file"), before, "no refused command touched the vault");

    // A value never comes from the command line; an empty value is refused.
    let out = env.clutch(["secret", "set", "API_TOKEN", "not-a-real-value-on-argv"]).code(2);
    assert!(out.stderr.contains("unexpected argument"), "clap refuses a value on argv: {out}");
    for empty in [&b""[..], b"\n", b"\r\n"] {
        let out = env.clutch_stdin(["secret", "set", "EMPTY"], empty).code(1);
        assert_eq!(out.error(), "the value is empty", "{out}");
        assert!(out.stderr.contains("| git clutch secret set EMPTY"), "the hint names the command: {out}");
    }
    let out = env.clutch_stdin(["secret", "rotate", "API_TOKEN"], b"").code(1);
    assert!(out.stderr.contains("| git clutch secret rotate API_TOKEN"), "the hint names the command: {out}");
    let out = env.clutch_stdin(["secret", "set", "key/alice-0011223344556677"], attempt.as_bytes()).code(1);
    assert!(out.error().contains("is not a secret name"), "signing key entries cannot be set by hand: {out}");
    assert_eq!(std::fs::read(&path).expect("the vault file"), before, "nothing refused touched the vault");
    let items = listed(&env);
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!((&items[0]["fingerprint"], &items[0]["version"]), (&json!(fp), &json!(1)), "API_TOKEN is as it was");
}

// ---------------------------------------------------------------------------------------------
// 3–5, 8. Secrets in runs

#[test]
fn secrets_a_run_gets_its_secret_in_the_environment_and_nowhere_else() {
    let (env, main) = org();
    env.unlock_vault();
    let value = test_secret("API_TOKEN");
    env.set_secret("API_TOKEN", &value);
    let fp = fingerprint(&env, "API_TOKEN");
    let job_file = env.root.join("job.json");
    let command = script(
        &env,
        "agent",
        &format!(
            r#"cat > '{job}'
echo "vault key variables the agent sees: $(env | grep -c '^CLUTCH_SECRET_KEY')"
echo "token on stdout: $TOKEN"
echo "token on stderr: $TOKEN" >&2
printf %s "$TOKEN" | sha256sum | cut -d' ' -f1 > token.sha256
mkdir -p .clutch-memory
printf '# Notes\n\n- the token is %s\n' "$TOKEN" > .clutch-memory/MEMORY.md
echo "{{\"summary\": \"used $TOKEN\"}}"
"#,
            job = job_file.display()
        ),
    );
    // The same secret twice: as a variable, and as a plain setting the job carries.
    subprocess_agent(&env, "kim", &command, &["env.TOKEN=secret:API_TOKEN", "api_key=secret:API_TOKEN"]);
    let task = assigned_task(&env, "Call the API", "kim");

    let out = hidden(env.clutch(["run", &task, "--json"]), &value, "git clutch run");
    let report = out.success().json();
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["summary"], "used [secret:API_TOKEN]", "the summary is redacted: {report}");
    let run = str_field(&report, "run").to_string();
    let commit = str_field(&report, "commit").to_string();

    // The agent really had the value: the hash it wrote is the value's.
    let expected = hex(&Sha256::digest(value.as_bytes()));
    assert_eq!(env.git_ok(["show", &format!("{commit}:token.sha256")]), expected, "the agent saw the secret's value as $TOKEN");
    let changed = env.git_ok(["diff-tree", "--no-commit-id", "--name-only", "-r", &main, &commit]);
    assert_eq!(changed, "token.sha256", "only the agent's file is committed (its notes are not)");

    // RUN_STARTED names the secret by fingerprint, once; no policy was asked for.
    let log = events(&env);
    let started = events_of(&log, "RUN_STARTED", &task);
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].payload()["secrets"], json!([{"name": "API_TOKEN", "fingerprint": fp}]), "{}", started[0].event);
    assert!(started[0].payload().get("policy").is_none_or(Value::is_null), "no policy: {}", started[0].event);
    let end = finished(&log, &run);
    assert_eq!(end.payload()["summary"], "used [secret:API_TOKEN]");
    let transcript = env.git(["show", &format!("{}:files/transcript.txt", end.commit)]).success().stdout;
    assert_hidden(&transcript, &value, "the transcript");
    assert!(transcript.contains("token on stdout: [secret:API_TOKEN]"), "stdout is kept, redacted: {transcript}");
    assert!(transcript.contains("token on stderr: [secret:API_TOKEN]"), "stderr is kept, redacted: {transcript}");
    assert!(transcript.contains("vault key variables the agent sees: 0"), "the agent never gets the vault's key: {transcript}");

    // The agent's notes are kept, redacted.
    let memory = env.git(["show", "refs/clutch/memory/kim:MEMORY.md"]).success().stdout;
    assert_hidden(&memory, &value, "kim's memory");
    assert!(memory.contains("the token is [secret:API_TOKEN]"), "the notes are kept with the name: {memory}");

    // The job on stdin carried neither the variable nor the value.
    let job_text = std::fs::read_to_string(&job_file).expect("the agent saved its job");
    assert_hidden(&job_text, &value, "the job on stdin");
    let job: Value = serde_json::from_str(&job_text).expect("the job is JSON");
    let settings = job["settings"].as_object().expect("settings");
    assert!(!settings.contains_key("env.TOKEN"), "variables are not settings: {settings:?}");
    assert_eq!(settings["api_key"], "[secret:API_TOKEN]", "a secret setting reaches the job by name only");

    // The definition in the log holds the reference; nothing clutch prints or stores holds the value.
    let state = hidden(env.clutch(["state", "--json"]), &value, "state --json").success().json();
    assert_eq!(state["agents"]["kim"]["runtime"]["settings"]["env.TOKEN"], "secret:API_TOKEN", "{}", state["agents"]["kim"]);
    hidden(env.clutch(["log"]), &value, "git clutch log").success();
    hidden(env.clutch(["log", "--json"]), &value, "git clutch log --json").success();
    assert_repository_hides(&env, &value);
    env.clutch(["verify"]).success();
}

#[test]
fn secrets_a_run_that_writes_a_secret_into_the_worktree_commits_nothing() {
    let (env, main) = org();
    env.unlock_vault();
    let value = test_secret("API_TOKEN");
    env.set_secret("API_TOKEN", &value);
    // The value in a file's contents, in a file's name, as a symbolic link's target (git stores
    // the target as a blob), or in a notes directory that is not the top-level one (only that
    // one stays out of the commit): each would put it in a commit.
    let cases = [
        ("contents", "printf 'TOKEN=%s\\n' \"$TOKEN\" > conf/app.env", "conf/app.env"),
        ("file name", "touch \"conf/cache-$TOKEN\"", "conf/cache-[secret:API_TOKEN]"),
        ("link target", "ln -s \"/run/$TOKEN\" conf/current", "conf/current"),
        (
            "nested notes",
            "mkdir -p conf/.clutch-memory && printf %s \"$TOKEN\" > conf/.clutch-memory/MEMORY.md",
            "conf/.clutch-memory/MEMORY.md",
        ),
    ];
    for (i, (what, write, file)) in cases.iter().enumerate() {
        let command = script(
            &env,
            &format!("agent-{i}"),
            &format!("echo draft > notes.txt\nmkdir -p conf\n{write}\necho '{{\"summary\": \"configured the app\"}}'\n"),
        );
        subprocess_agent(&env, "kim", &command, &["env.TOKEN=secret:API_TOKEN"]);
        let task = assigned_task(&env, &format!("Configure the app ({what})"), "kim");

        let out = hidden(env.clutch(["run", &task, "--agent", "kim"]), &value, "git clutch run").code(1);
        let error = error_line(&out);
        assert!(error.contains("secret API_TOKEN") && error.contains(file), "{what}: the error names the secret and {file}:\n{out}");
        let run = error.strip_prefix("run ").and_then(|r| r.split_whitespace().next()).expect("the error names the run").to_string();
        let log = events(&env);
        let end = finished(&log, &run);
        assert_eq!(end.payload()["status"], "failed", "{what}: {}", end.event);
        let summary = str_field(end.payload(), "summary");
        assert!(summary.contains("secret API_TOKEN") && summary.contains(file), "{what}: {summary}");
        assert_nothing_half_written(&env, "kim", &task, &main, &run);
        assert_repository_hides(&env, &value);
    }
}

#[test]
fn secrets_the_test_command_after_a_run_never_sees_the_vault_key() {
    // The test command runs code the agent wrote (here check.sh): with the vault's key it could
    // open every secret and every agent's signing key.
    let (env, _main) = org();
    env.unlock_vault();
    let value = test_secret("API_TOKEN");
    env.set_secret("API_TOKEN", &value);
    let command = script(
        &env,
        "agent",
        "cat > check.sh <<'EOF'\necho \"vault key variables the test sees: $(env | grep -c '^CLUTCH_SECRET_KEY')\"\nEOF\necho '{\"summary\": \"wrote the check\"}'\n",
    );
    subprocess_agent(&env, "kim", &command, &["env.TOKEN=secret:API_TOKEN", "test_command=sh check.sh"]);
    let task = assigned_task(&env, "Write a check", "kim");
    let report = hidden(env.clutch(["run", &task, "--json"]), &value, "git clutch run").success().json();
    assert_eq!(report["tests_passed"], true, "{report}");
    let log = events(&env);
    let tests = events_of(&log, "TEST_RUN", &task);
    assert_eq!(tests.len(), 1, "one test run for {task}");
    let output = env.git(["show", &format!("{}:files/output.txt", tests[0].commit)]).success().stdout;
    assert!(output.contains("vault key variables the test sees: 0"), "the test command runs without the vault's key: {output}");
    assert_repository_hides(&env, &value);
}

#[test]
fn secrets_a_locked_vault_or_a_missing_secret_stops_the_run_before_anything_is_written() {
    let (env, _main) = org();
    env.unlock_vault();
    let value = test_secret("API_TOKEN");
    env.set_secret("API_TOKEN", &value);
    let marker = env.root.join("ran");
    let command = script(&env, "agent", &format!("touch '{}'\n", marker.display()));
    subprocess_agent(&env, "kim", &command, &["env.TOKEN=secret:API_TOKEN"]);
    let task = env.new_task("bob", "Nobody claimed this", &["--project", "core"]);

    let nothing_written = |env: &TestEnv, head: &Option<String>, why: &str| {
        assert_eq!(&env.log_head(), head, "{why}: nothing was recorded");
        let state = env.state();
        assert_eq!(state["tasks"][&task]["assignee"], Value::Null, "{why}: the task was not claimed");
        assert!(branch_tip(env, &format!("clutch/kim/{task}")).is_none(), "{why}: no branch");
        assert!(!marker.exists(), "{why}: the agent never ran");
        assert_no_worktree_left(env);
    };

    let head = env.log_head();
    let out = clutch_key(&env, Key::Unset, ["run", &task, "--agent", "kim"], b"").code(1);
    let error = out.error();
    assert!(
        error.contains("CLUTCH_SECRET_KEY") && error.contains("API_TOKEN"),
        "the error says the vault is locked and why it is needed: {out}"
    );
    nothing_written(&env, &head, "locked vault");

    let out = hidden(clutch_key(&env, Key::Text(&other_identity()), ["run", &task, "--agent", "kim"], b""), &value, "run").code(1);
    assert!(out.error().contains("CLUTCH_SECRET_KEY does not open the vault"), "{out}");
    nothing_written(&env, &head, "another identity");

    subprocess_agent(&env, "kim", &command, &["env.TOKEN=secret:NOT_SET_YET"]);
    let head = env.log_head();
    let out = env.clutch(["run", &task, "--agent", "kim"]).code(1);
    assert_eq!(out.error(), "secret 'NOT_SET_YET' (setting env.TOKEN of agent 'kim') is not in the vault", "{out}");
    assert!(out.stderr.contains("hint: add it with: git clutch secret set NOT_SET_YET"), "{out}");
    nothing_written(&env, &head, "missing secret");

    // A secret too short to be redacted is never handed out.
    env.set_secret("SHORT", "abc");
    subprocess_agent(&env, "kim", &command, &["env.TOKEN=secret:SHORT"]);
    let head = env.log_head();
    let out = env.clutch(["run", &task, "--agent", "kim"]).code(1);
    assert!(out.error().contains("secret 'SHORT' is shorter than"), "{out}");
    nothing_written(&env, &head, "short secret");
}

#[test]
fn secrets_review_runs_redact_the_verdict_summary_and_transcript() {
    let (env, _main) = org();
    env.unlock_vault();
    let value = test_secret("API_TOKEN");
    env.set_secret("API_TOKEN", &value);
    let work = script(&env, "work", "echo hello > hello.txt\n");
    subprocess_agent(&env, "kim", &work, &[]);
    let task = assigned_task(&env, "Say hello", "kim");
    let pr = str_field(&env.clutch(["run", &task, "--json"]).success().json(), "pr").to_string();

    let review = script(
        &env,
        "review",
        "cat > /dev/null\necho \"reviewing with $TOKEN\" >&2\necho \"{\\\"verdict\\\": \\\"request_changes\\\", \\\"message\\\": \\\"do not log $TOKEN\\\", \\\"summary\\\": \\\"saw $TOKEN\\\"}\"\n",
    );
    subprocess_agent(&env, "bob", &review, &["env.TOKEN=secret:API_TOKEN"]);
    let out = hidden(env.clutch(["run", "--review", &pr, "--agent", "bob", "--json"]), &value, "git clutch run --review");
    let report = out.success().json();
    assert_eq!(report["verdict"], "request_changes", "{report}");
    assert_eq!(report["summary"], "saw [secret:API_TOKEN]", "{report}");
    let run = str_field(&report, "run").to_string();

    let state = env.state();
    let reviews = state["governance"]["prs"][&pr]["reviews"].as_array().expect("reviews").clone();
    assert_eq!(reviews.len(), 1, "{reviews:?}");
    assert_eq!(reviews[0]["body"], "do not log [secret:API_TOKEN]", "the review body is redacted");
    let log = events(&env);
    let end = finished(&log, &run);
    let started = log.iter().find(|e| e.kind() == "RUN_STARTED" && e.payload()["purpose"] == "review").expect("the review run");
    assert_eq!(started.payload()["secrets"], json!([{"name": "API_TOKEN", "fingerprint": fingerprint(&env, "API_TOKEN")}]));
    let transcript = env.git(["show", &format!("{}:files/transcript.txt", end.commit)]).success().stdout;
    assert_hidden(&transcript, &value, "the review's transcript");
    assert!(transcript.contains("reviewing with [secret:API_TOKEN]"), "{transcript}");
    assert_repository_hides(&env, &value);
}

// ---------------------------------------------------------------------------------------------
// 6. Agent signing keys in the vault

#[test]
fn secrets_agent_keys_made_while_unlocked_live_only_in_the_vault_and_sign() {
    let env = TestEnv::new();
    let identity = env.unlock_vault();
    env.clutch(["init", "--name", "acme", "--founder", "alice"]).success();
    env.clutch(["agent", "add", "x", "--role", "junior"]).success();
    assert_eq!(private_key_files(&env), Vec::<String>::new(), "no private key file on disk, only .pub files");
    let stem = key_stem(&env, "x");
    let doc = age_decrypt(&env, &identity);
    let entry = doc["secrets"][format!("key/{stem}")]["value"].as_str().unwrap_or("");
    assert!(entry.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"), "the vault holds x's private key as key/{stem}");
    assert!(doc["secrets"][format!("key/{}", key_stem(&env, "alice"))].is_object(), "and alice's");
    let names: Vec<String> = listed(&env).iter().map(|s| str_field(s, "name").to_string()).collect();
    assert!(names.contains(&format!("key/{stem}")), "secret list shows the key entry by name: {names:?}");

    let task = env.new_task("alice", "Sign me", &[]);
    env.clutch_as("x", ["task", "claim", &task]).success();
    assert_head_signed_by(&env, "x");

    // Locked: the key cannot be read, and the error says where it is.
    let head = env.log_head();
    let other = env.new_task("alice", "Sign me too", &[]);
    let head_after = env.log_head();
    assert_ne!(head, head_after);
    let out = clutch_key(&env, Key::Unset, ["--as", "x", "task", "claim", &other], b"").code(1);
    assert_eq!(out.error(), "the private key for agent 'x' is in the vault, which is locked", "{out}");
    assert!(out.stderr.contains("CLUTCH_SECRET_KEY"), "the hint says how to unlock: {out}");
    let out = clutch_key(&env, Key::Text(&other_identity()), ["--as", "x", "task", "claim", &other], b"").code(1);
    assert!(out.error().contains("CLUTCH_SECRET_KEY does not open the vault"), "{out}");
    assert_eq!(env.log_head(), head_after, "nothing was signed without the key");
    assert_eq!(env.state()["tasks"][&other]["assignee"], Value::Null);
}

#[test]
fn secrets_a_refused_agent_add_or_hire_takes_back_only_its_own_key_and_keeps_the_vault() {
    let env = TestEnv::new();
    let identity = env.unlock_vault();
    env.clutch(["init", "--name", "acme", "--founder", "alice"]).success();
    env.clutch(["agent", "add", "bob", "--role", "senior"]).success();
    env.clutch(["agent", "add", "hank", "--role", "hr"]).success();
    let value = test_secret("kept");
    env.set_secret("KEPT", &value);
    let names = |env: &TestEnv| -> Vec<String> {
        let doc = age_decrypt(env, &identity);
        doc["secrets"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
    };
    let pubs = |env: &TestEnv| -> usize {
        std::fs::read_dir(env.clutch_home.join("keys"))
            .expect("list keys")
            .filter(|e| e.as_ref().expect("entry").file_name().to_string_lossy().ends_with(".pub"))
            .count()
    };
    let (before, pubs_before, head) = (names(&env), pubs(&env), env.log_head());
    assert_eq!(before.len(), 4, "three agent keys and KEPT: {before:?}");

    // A Senior may not add agents; HR's proposal needs HR. Both make a key before the event is
    // refused, and must take back that key and nothing else.
    let out = env.clutch_as("bob", ["agent", "add", "x", "--role", "junior"]).code(1);
    assert!(out.error().contains("bob"), "{out}");
    let out = env.clutch_as("bob", ["hr", "propose-hire", "y", "--role", "junior", "-m", "more hands"]).code(1);
    assert!(out.error().contains("bob"), "{out}");

    assert!(env.clutch_home.join("vault.age").is_file(), "the vault is still there");
    assert_eq!(names(&env), before, "the vault holds what it held: no key for x or y, KEPT kept");
    assert_eq!(pubs(&env), pubs_before, "no .pub file left for x or y");
    assert_eq!(env.log_head(), head, "nothing was written");
    assert!(listed(&env).iter().any(|s| s["name"] == "KEPT"), "secret list still shows KEPT");

    // And the same commands, allowed, store the keys.
    env.clutch(["agent", "add", "x", "--role", "junior"]).success();
    env.clutch_as("hank", ["hr", "propose-hire", "y", "--role", "junior", "-m", "more hands"]).success();
    assert_eq!(names(&env).len(), 6, "x's and y's keys are in the vault now");
}

#[test]
fn secrets_import_keys_moves_plain_key_files_into_the_vault() {
    let (env, _main) = org();
    let agents = ["alice", "bob", "hank", "jill", "kim"];
    let before: Vec<(String, String)> = agents
        .iter()
        .map(|a| {
            let file = env.key_file(a);
            (file.file_name().expect("a name").to_string_lossy().into_owned(), std::fs::read_to_string(&file).expect("the key"))
        })
        .collect();
    assert_eq!(private_key_files(&env).len(), agents.len(), "keys made before the vault are plain files");

    let identity = env.unlock_vault();
    let moved = env.clutch(["secret", "import-keys", "--json"]).success().json();
    let mut moved: Vec<String> = moved.as_array().expect("an array").iter().map(|m| m.as_str().expect("a name").to_string()).collect();
    moved.sort();
    let expected: Vec<String> = before.iter().map(|(name, _)| format!("key/{name}")).collect();
    assert_eq!(moved, expected, "every plain key moved");
    assert_eq!(private_key_files(&env), Vec::<String>::new(), "the plain files are gone, the .pub files stay");
    let doc = age_decrypt(&env, &identity);
    for (name, text) in &before {
        assert!(doc["secrets"][format!("key/{name}")]["value"].as_str() == Some(text.as_str()), "the vault holds {name} as it was");
    }
    let again = env.clutch(["secret", "import-keys"]).success();
    assert_eq!(again.out(), "no plain key files to move");

    // Signing still works, from the vault.
    env.new_task("bob", "Signed from the vault", &["--project", "core"]);
    assert_head_signed_by(&env, "bob");
    let out = clutch_key(&env, Key::Unset, ["--as", "bob", "task", "new", "Locked out"], b"").code(1);
    assert!(out.error().contains("is in the vault, which is locked"), "{out}");

    // No agent definition may ask for a signing key as a secret: refused when configured.
    let bob_key = format!("key/{}", key_stem(&env, "bob"));
    let head = env.log_head();
    let out = env.clutch(
        ["agent", "config", "kim", "--runtime", "subprocess", "--runtime-opt", "command=true"]
            .into_iter()
            .chain(["--runtime-opt", &format!("env.K=secret:{bob_key}")]),
    );
    let out = out.code(1);
    assert_eq!(out.error(), format!("setting env.K: '{bob_key}' is not a secret name"), "{out}");
    assert_eq!(env.log_head(), head, "nothing was recorded");
    assert_eq!(env.state()["agents"]["kim"]["runtime"], Value::Null, "kim has no runtime");
}

// ---------------------------------------------------------------------------------------------
// 7. Policy

#[test]
fn secrets_network_none_cuts_a_subprocess_off_and_its_hash_is_recorded() {
    let (env, _main) = org();
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
    listener.set_nonblocking(true).expect("non-blocking");
    let port = listener.local_addr().expect("an address").port();
    // A real connection attempt; its outcome is the run's summary.
    let command = script(
        &env,
        "agent",
        &format!(
            "if bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' 2>/dev/null; then r=connected; else r=unreachable; fi\necho \"{{\\\"summary\\\": \\\"$r\\\"}}\"\n"
        ),
    );
    let accepted = |listener: &TcpListener| match listener.accept() {
        Ok(_) => true,
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(err) => panic!("accept failed: {err}"),
    };

    // Without a policy the probe gets through, so its failure below means something.
    subprocess_agent(&env, "kim", &command, &[]);
    let open = assigned_task(&env, "Reach the server", "kim");
    let report = env.clutch(["run", &open, "--json"]).success().json();
    assert_eq!(report["summary"], "connected", "{report}");
    assert!(accepted(&listener), "the connection reached the test's listener");
    let log = events(&env);
    let started = events_of(&log, "RUN_STARTED", &open);
    assert!(started[0].payload().get("policy").is_none_or(Value::is_null), "no policy: {}", started[0].event);

    subprocess_agent(&env, "kim", &command, &["network=none"]);
    let closed = assigned_task(&env, "Try to reach the server", "kim");
    let report = env.clutch(["run", &closed, "--json"]).success().json();
    assert_eq!(report["summary"], "unreachable", "network=none stops the connection: {report}");
    assert!(!accepted(&listener), "nothing reached the listener");
    let log = events(&env);
    let started = events_of(&log, "RUN_STARTED", &closed);
    let expected = format!("sha256:{}", hex(&Sha256::digest(br#"{"network":"none"}"#)));
    assert_eq!(started[0].payload()["policy"], expected.as_str(), "the canonical policy's hash: {}", started[0].event);
}

#[test]
fn secrets_policies_a_subprocess_cannot_enforce_are_refused_before_it_runs() {
    let (env, _main) = org();
    // A definition no machine could run under is refused when it is written: nothing is
    // recorded, and the agent keeps the definition it had.
    let cases =
        [("sandbox=read-only", "a sandbox"), ("tool_allowlist=Read,Edit", "a tool allowlist"), ("network=example.com", "a host allowlist")];
    for (opt, needle) in cases {
        let head = env.log_head();
        let args = ["agent", "config", "kim", "--runtime", "subprocess", "--runtime-opt", "command=true", "--runtime-opt", opt];
        let out = env.clutch(args).code(1);
        let error = out.error();
        assert!(error.contains("would refuse every run") && error.contains("the subprocess runtime cannot enforce"), "{opt}: {out}");
        assert!(error.contains(needle), "{opt}: the refusal names what cannot be enforced: {out}");
        assert_eq!(env.log_head(), head, "{opt}: nothing was recorded");
        assert_eq!(env.state()["agents"]["kim"]["runtime"], Value::Null, "{opt}: kim has no runtime");
    }
    // `agent add` checks the same before it adds anyone.
    let head = env.log_head();
    let out = env
        .clutch([
            "agent",
            "add",
            "zed",
            "--role",
            "junior",
            "--runtime",
            "subprocess",
            "--runtime-opt",
            "command=true",
            "--runtime-opt",
            "sandbox=read-only",
        ])
        .code(1);
    assert!(out.error().contains("cannot enforce"), "{out}");
    assert_eq!(env.log_head(), head, "zed was not added");

    // What it can promise, it runs under: full access is no restriction.
    let marker = env.root.join("ran-full");
    let command = script(&env, "agent-full", &format!("touch '{}'\n", marker.display()));
    subprocess_agent(&env, "kim", &command, &["sandbox=full-access"]);
    let task = assigned_task(&env, "Anything goes", "kim");
    env.clutch(["run", &task, "--agent", "kim"]).success();
    assert!(marker.exists(), "the command ran");
    let log = events(&env);
    let expected = format!("sha256:{}", hex(&Sha256::digest(br#"{"sandbox":"full-access"}"#)));
    assert_eq!(events_of(&log, "RUN_STARTED", &task)[0].payload()["policy"], expected.as_str());

    // The built-in worker must write, so a read-only sandbox is refused too.
    let head = env.log_head();
    let args =
        ["agent", "config", "jill", "--runtime", "in-process", "--runtime-opt", "program=worker", "--runtime-opt", "sandbox=read-only"];
    let out = env.clutch(args).code(1);
    assert!(out.error().contains("read-only"), "{out}");
    assert_eq!(env.log_head(), head, "nothing was recorded");
}

#[test]
fn secrets_a_definition_naming_a_secret_the_vault_lacks_is_written_with_a_warning() {
    let env = TestEnv::with_org();
    env.unlock_vault();
    let configure = |env: &TestEnv| {
        env.clutch([
            "agent",
            "config",
            "kim",
            "--runtime",
            "subprocess",
            "--runtime-opt",
            "command=true",
            "--runtime-opt",
            "env.TOKEN=secret:API_TOKEN",
        ])
        .success()
    };
    let out = configure(&env);
    assert!(
        out.stderr.contains("warning: the vault holds no secret API_TOKEN yet") && out.stderr.contains("git clutch secret set API_TOKEN"),
        "{out}"
    );
    assert_eq!(env.state()["agents"]["kim"]["runtime"]["settings"]["env.TOKEN"], "secret:API_TOKEN", "the definition is written");
    env.set_secret("API_TOKEN", &test_secret("token"));
    let out = configure(&env);
    assert!(!out.stderr.contains("warning"), "no warning once the vault holds it: {out}");
}

#[test]
fn secrets_a_bad_policy_value_is_a_clear_error_and_writes_nothing() {
    let (env, _main) = org();
    let cases = [
        ("sandbox=jail", "sandbox 'jail' is not one of read-only, workspace-write, full-access"),
        (
            "network=exa mple.com",
            "network host 'exa mple.com' is not a host name (network is none, any, or host names separated by commas)",
        ),
    ];
    for (opt, needle) in cases {
        // On an existing agent: no definition recorded.
        let head = env.log_head();
        let out = env.clutch(["agent", "config", "kim", "--runtime", "subprocess", "--runtime-opt", "command=true", "--runtime-opt", opt]);
        let out = out.code(1);
        assert_eq!(out.error(), format!("agent 'kim': {needle}"), "{opt}: {out}");
        assert_eq!(env.log_head(), head, "{opt}: nothing was recorded");
        assert_eq!(env.state()["agents"]["kim"]["runtime"], Value::Null, "{opt}: kim still has no runtime");

        // On a new agent: not added half-defined.
        let keys_before = std::fs::read_dir(env.clutch_home.join("keys")).expect("keys").count();
        let out = env.clutch(["agent", "add", "zed", "--role", "junior", "--runtime", "subprocess", "--runtime-opt", opt]).code(1);
        assert_eq!(out.error(), format!("agent 'zed': {needle}"), "{opt}: {out}");
        assert_eq!(env.log_head(), head, "{opt}: agent add recorded nothing");
        assert!(env.state()["agents"].get("zed").is_none(), "{opt}: zed was not added");
        assert_eq!(std::fs::read_dir(env.clutch_home.join("keys")).expect("keys").count(), keys_before, "{opt}: no key made for zed");
    }
}
