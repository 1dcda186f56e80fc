//! Keys: generated ones are private to this user, an existing `ssh-keygen` key can found an
//! org, and a key clutch cannot use without a prompt is refused up front.

use std::os::unix::fs::PermissionsExt;

use crate::common::{str_field, TestEnv, LOG_REF};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|err| panic!("stat {}: {err}", path.display())).permissions().mode() & 0o777
}

/// `<key>.pub` beside a private key file (not `Path::with_extension`: agent ids may hold dots).
fn pub_file(private: &std::path::Path) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}.pub", private.display()))
}

/// The key in an OpenSSH public key line, without its comment.
fn public_key(line: &str) -> String {
    line.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

#[test]
fn generated_keys_are_private() {
    let env = TestEnv::with_org();
    let keys = env.clutch_home.join("keys");
    assert_eq!(mode(&keys), 0o700, "the keys directory is the user's alone");
    let state = env.state();
    for agent in ["alice", "bob", "jill", "kim", "hank"] {
        let private = env.key_file(agent);
        assert_eq!(mode(&private), 0o600, "{}", private.display());
        let text = std::fs::read_to_string(&private).expect("read key");
        assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"), "OpenSSH format: {}", private.display());
        // ssh-keygen reads it, and derives the public key the roster holds.
        let mut cmd = env.command("ssh-keygen");
        cmd.arg("-y").arg("-f").arg(&private);
        let out = cmd.output().expect("ssh-keygen must be installed (package openssh-client)");
        assert!(out.status.success(), "ssh-keygen -y {}: {}", private.display(), String::from_utf8_lossy(&out.stderr));
        let derived = public_key(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(derived, str_field(&state["agents"][agent], "public_key"), "{agent}'s key file is the roster's key");
        let public = std::fs::read_to_string(pub_file(&private)).expect("read .pub");
        assert_eq!(public_key(&public), derived);
    }
}

#[test]
fn init_with_an_existing_ssh_key() {
    let env = TestEnv::new();
    let key = env.ssh_keygen("id_ed25519", "");
    let out = env.clutch(["init", "--name", "acme", "--founder", "alice", "--key", key.to_str().expect("utf-8 path"), "--json"]).success();
    let json = out.json();
    let pub_line = std::fs::read_to_string(key.with_extension("pub")).expect("read .pub");
    let state = env.state();
    assert_eq!(str_field(&state["agents"]["alice"], "public_key"), public_key(&pub_line), "the roster holds the given key");
    let event: serde_json::Value = serde_json::from_str(&env.git_ok(["show", &format!("{LOG_REF}:event.json")])).expect("JSON");
    assert_eq!(str_field(&event["payload"], "public_key"), public_key(&pub_line));
    // clutch's entry for alice resolves to that very file, and nothing secret was copied.
    let entry = env.key_file("alice");
    assert_eq!(std::fs::canonicalize(&entry).expect("resolve"), std::fs::canonicalize(&key).expect("resolve"));
    assert_eq!(json["key"].as_str().map(std::path::PathBuf::from), Some(entry));
    // The org works with it: alice signs, and git checks her signatures with the .pub key.
    let task = env.new_task("alice", "Signed with my own key", &[]);
    let signers = env.signers_file();
    for commit in env.log_commits() {
        env.git_verify_commit(&signers, &commit).success();
    }
    let head = env.raw_commit(&env.log_head().expect("a log"));
    let tree = head.header("tree")[0].to_string();
    let parents = head.header("parent");
    let author = crate::common::Ident::parse(head.header("author")[0]);
    let again = env.commit_tree(&tree, &parents, &author, &author, head.message(), Some(&key));
    assert_eq!(Some(again), env.log_head(), "git signs {task}'s event with the same key to the same commit");
}

#[test]
fn passphrase_protected_key_is_refused() {
    let env = TestEnv::new();
    let key = env.ssh_keygen("id_locked", "correct horse battery staple");
    let out = env.clutch(["init", "--name", "acme", "--founder", "alice", "--key", key.to_str().expect("utf-8 path")]).code(1);
    let error = out.error();
    assert!(error.contains("passphrase") && error.contains("id_locked"), "names the key and the problem:\n{out}");
    assert!(out.stderr.contains("hint: "), "{out}");
    assert_eq!(env.log_head(), None, "no org was founded");
    assert_eq!(env.git(["config", "clutch.actor"]).status, 1, "no actor was configured");
    let keys = env.clutch_home.join("keys");
    assert!(!keys.exists() || std::fs::read_dir(&keys).expect("list").next().is_none(), "no key entry was made");
}

#[test]
fn unusable_founding_keys_are_refused() {
    let env = TestEnv::new();
    let key = env.ssh_keygen("id_ed25519", "");
    let pub_path = key.with_extension("pub");
    let out = env.clutch(["init", "--name", "acme", "--founder", "alice", "--key", pub_path.to_str().expect("utf-8")]).code(1);
    assert!(out.error().contains("not an OpenSSH private key"), "{out}");
    assert!(out.stderr.contains("hint: give the private half"), "{out}");
    let mut cmd = env.command("ssh-keygen");
    let ecdsa = env.root.join("id_ecdsa");
    cmd.args(["-q", "-t", "ecdsa", "-N", "", "-f"]).arg(&ecdsa);
    assert!(cmd.output().expect("ssh-keygen must be installed").status.success());
    let out = env.clutch(["init", "--name", "acme", "--founder", "alice", "--key", ecdsa.to_str().expect("utf-8")]).code(1);
    assert!(out.error().contains("is not an Ed25519 key"), "{out}");
    let missing = env.root.join("no-such-key");
    let out = env.clutch(["init", "--name", "acme", "--founder", "alice", "--key", missing.to_str().expect("utf-8")]).code(1);
    assert!(out.error().contains("no-such-key"), "{out}");
    assert_eq!(env.log_head(), None);
}

#[test]
fn agent_registered_with_only_a_public_key_cannot_sign_here() {
    let env = TestEnv::with_org();
    let key = env.ssh_keygen("remote_agent", "");
    let pub_line = std::fs::read_to_string(key.with_extension("pub")).expect("read .pub");
    env.clutch(["agent", "add", "remy", "--role", "senior", "--key", pub_line.trim()]).success();
    assert_eq!(str_field(&env.state()["agents"]["remy"], "public_key"), public_key(&pub_line));
    let keys: Vec<String> = std::fs::read_dir(env.clutch_home.join("keys"))
        .expect("keys dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("remy"))
        .collect();
    assert!(keys.is_empty(), "no private key is made for an agent whose key is given: {keys:?}");
    let head = env.log_head();
    let out = env.clutch_as("remy", ["task", "new", "From afar"]).code(1);
    assert!(out.error().contains("no private key for agent 'remy'"), "{out}");
    assert_eq!(env.log_head(), head);
    let bad = env.clutch(["agent", "add", "rsa", "--role", "junior", "--key", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ"]).code(1);
    assert!(bad.error().contains("not an Ed25519 public key"), "{bad}");
}

/// Agent ids may contain dots (`ann.lee`); each agent's `.pub` still sits beside its own
/// private key, and no agent's files are touched by another's.
#[test]
fn dotted_agent_ids_keep_their_own_public_key_file() {
    let env = TestEnv::with_org();
    env.clutch(["agent", "add", "ann.lee", "--role", "junior"]).success();
    env.clutch(["agent", "add", "ann.ray", "--role", "junior"]).success();
    let state = env.state();
    for agent in ["ann.lee", "ann.ray"] {
        let private = env.key_file(agent);
        let public = std::fs::read_to_string(pub_file(&private))
            .unwrap_or_else(|err| panic!("{agent}'s public key should be at {}: {err}", pub_file(&private).display()));
        assert_eq!(public_key(&public), str_field(&state["agents"][agent], "public_key"));
        assert!(public.trim_end().ends_with(&format!(" {agent}@clutch.invalid")), "{public}");
    }
    // A refused add of a third ann cleans up only its own files.
    let refused = env.clutch_as("bob", ["agent", "add", "ann.kim", "--role", "junior"]).code(1);
    assert!(refused.error().contains("may not add agents"), "{refused}");
    for agent in ["ann.lee", "ann.ray"] {
        assert!(pub_file(&env.key_file(agent)).exists(), "{agent}'s .pub survives another agent's refused add");
    }
}
