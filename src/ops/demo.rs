//! `git clutch demo`: a whole organization at work, offline, in a minute.
//!
//! A fresh repository, an org with a CEO, HR, a Senior reviewer and two Junior workers (the
//! built-in in-process agents), a policy that wants tests and one Senior approval, a budget,
//! and a small project of dependent tasks; then `work` runs it to the end: every PR goes
//! through one round of changes, tests, approval and a signed merge.

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
    let ctx = Ctx::new(Store::discover(dir)?, Env::pinned(home.to_path_buf(), None, now));
    org::init(&ctx, "Demo Org", "ceo", None)?;
    for (id, role) in [("hana", Role::Hr), ("sam", Role::Senior), ("jo", Role::Junior), ("jill", Role::Junior)] {
        org::agent_add(&ctx, "ceo", id, role, None)?;
    }
    let test = "for f in work/*.md; do grep -q '^# ' \"$f\" || exit 1; done".to_string();
    for (id, program) in [("sam", "reviewer"), ("jo", "worker"), ("jill", "worker")] {
        let mut settings = std::collections::BTreeMap::new();
        settings.insert("program".to_string(), program.to_string());
        if program == "worker" {
            settings.insert("test_command".to_string(), test.clone());
        }
        org::configure(&ctx, "ceo", id, "in-process", &settings)?;
    }
    let mut policy = std::collections::BTreeMap::new();
    policy.insert("require_tests".to_string(), "true".to_string());
    policy.insert("required_approvals".to_string(), "1".to_string());
    governance::set_policy(&ctx, "ceo", &policy, "tests and one senior approval before anything reaches main")?;
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

/// Run the demo org until nothing is left to do.
pub fn run(ctx: &Ctx, parallel: usize, say: &(dyn Fn(&str) + Sync)) -> Result<WorkReport> {
    work::work(ctx, parallel, Until::Idle, say)
}
