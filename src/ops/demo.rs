//! `git clutch demo`: a whole organization at work, offline, in a minute.
//!
//! A fresh repository, an org with a CEO, HR, a Senior reviewer and two Junior workers (the
//! built-in in-process agents), a policy that wants tests and one Senior approval, a budget,
//! and a small project of dependent tasks; then `work` runs it to the end: every PR goes
//! through one round of changes, tests, approval and a signed merge.
//!
//! The demo keeps its agents' signing keys in a vault of its own (an age identity made for it,
//! `vault-key.txt` beside the vault), gives the workers a demo secret as `env.DEMO_TOKEN` and a
//! policy (`network=none`, `sandbox=workspace-write`), so its log shows RUN_STARTED with the
//! secret's fingerprint and the policy's hash.

use std::path::Path;

use crate::env::Env;
use crate::event::Role;
use crate::store::Store;
use crate::{Error, Result};

use super::task::NewTask;
use super::work::{self, Until, WorkReport};
use super::{governance, org, task, Ctx};

pub const TASKS: &[(&str, &str, &[usize])] = &[
    ("Write the spec", "What the parser accepts, with examples.", &[]),
    ("Write the tokenizer", "Split input into tokens as the spec says.", &[0]),
    ("Write the grammar", "The grammar the parser follows.", &[0]),
    ("Write the parser", "Tokens to a tree, by the grammar.", &[1, 2]),
    ("Write the error messages", "Say what was wrong and where.", &[3]),
    ("Write the user guide", "How to use it, from the spec and the errors.", &[4]),
];

/// Make the demo org in `dir` (created; must not hold a repository yet).
pub fn setup(dir: &Path, home: &Path, now: i64) -> Result<Ctx> {
    if dir.join(".git").exists() {
        return Err(Error::user(format!("{} already holds a git repository", dir.display())).hint("give the demo a new directory"));
    }
    std::fs::create_dir_all(dir).map_err(|err| Error::user(format!("cannot create {}: {err}", dir.display())))?;
    let git = |args: &[&str]| -> Result<()> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "demo")
            .env("GIT_AUTHOR_EMAIL", "demo@clutch.invalid")
            .env("GIT_COMMITTER_NAME", "demo")
            .env("GIT_COMMITTER_EMAIL", "demo@clutch.invalid")
            .output()
            .map_err(|err| Error::internal(format!("cannot run git: {err}")))?;
        if !out.status.success() {
            return Err(Error::internal(format!("git {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())));
        }
        Ok(())
    };
    git(&["init", "-q", "-b", "main"])?;
    std::fs::write(dir.join("README.md"), "# Demo\n\nA project run by an organization of agents with clutch.\n")?;
    git(&["add", "README.md"])?;
    git(&["commit", "-q", "-m", "Start the demo project"])?;
    let key = demo_vault_key(home)?;
    let env = Env::pinned(home.to_path_buf(), None, now).with_secret_key(key);
    let ctx = Ctx::new(Store::discover(dir)?, env);
    let mut token = [0u8; 16];
    getrandom::getrandom(&mut token).map_err(|err| Error::internal(format!("no randomness: {err}")))?;
    let token: String = token.iter().map(|b| format!("{b:02x}")).collect();
    crate::vault::Vault::edit(&ctx.env, |vault| vault.set("DEMO_TOKEN", format!("demo-{token}"), now).map(|_| ()))?;
    org::init(&ctx, "Demo Org", "ceo", None)?;
    for (id, role) in [("hana", Role::Hr), ("sam", Role::Senior), ("jo", Role::Junior), ("jill", Role::Junior)] {
        org::agent_add(&ctx, "ceo", id, role, None)?;
    }
    let test = "for f in work/*.md; do grep -q '^# ' \"$f\" || exit 1; done".to_string();
    for (id, program) in [("sam", "reviewer"), ("jo", "worker"), ("jill", "worker")] {
        let mut settings = std::collections::BTreeMap::new();
        settings.insert("program".to_string(), program.to_string());
        // Everyone runs the tests; only the reviewer's run counts for a merge (tests_by=reviewers).
        settings.insert("test_command".to_string(), test.clone());
        if program == "worker" {
            settings.insert("env.DEMO_TOKEN".to_string(), "secret:DEMO_TOKEN".to_string());
            settings.insert("network".to_string(), "none".to_string());
            settings.insert("sandbox".to_string(), "workspace-write".to_string());
        }
        org::configure(&ctx, "ceo", id, "in-process", &settings)?;
    }
    let mut policy = std::collections::BTreeMap::new();
    policy.insert("require_tests".to_string(), "true".to_string());
    policy.insert("tests_by".to_string(), "reviewers".to_string());
    policy.insert("required_approvals".to_string(), "1".to_string());
    governance::set_policy(&ctx, "ceo", &policy, "tests run by a reviewer and one senior approval before anything reaches main")?;
    governance::set_budget(&ctx, "ceo", "org", Some(5_000_000), Some(1_000_000))?;
    org::project_new(&ctx, "sam", "parser", Some("A small parser, built by the org"))?;
    let mut ids: Vec<String> = Vec::new();
    for (title, description, after) in TASKS {
        let after: Vec<String> = after.iter().map(|i| ids[*i].clone()).collect();
        let new = NewTask { title, project: Some("parser"), after: &after, description: Some(description) };
        let written = task::create(&ctx, "sam", &new)?;
        ids.push(written.applied.created.clone().unwrap_or_default());
    }
    Ok(ctx)
}

/// The identity file that locks the demo's vault: `home/vault-key.txt` (0600), made here.
pub fn vault_key_path(home: &Path) -> std::path::PathBuf {
    home.join("vault-key.txt")
}

fn demo_vault_key(home: &Path) -> Result<crate::env::SecretText> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(home)
        .map_err(|err| Error::user(format!("cannot create {}: {err}", home.display())))?;
    let identity = age::x25519::Identity::generate();
    let secret = age::secrecy::ExposeSecret::expose_secret(&identity.to_string()).to_string();
    let text = format!("# public key: {}\n{secret}\n", identity.to_public());
    let path = vault_key_path(home);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|err| Error::user(format!("cannot write {}: {err}", path.display())))?;
    file.write_all(text.as_bytes())?;
    Ok(crate::env::SecretText::new(secret))
}

/// Run the demo org until nothing is left to do.
pub fn run(ctx: &Ctx, parallel: usize, say: &(dyn Fn(&str) + Sync)) -> Result<WorkReport> {
    work::work(ctx, parallel, Until::Idle, say)
}
