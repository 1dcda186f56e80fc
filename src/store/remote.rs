//! Remotes: everything that crosses a transport goes through the `git` binary, which owns the
//! user's credentials, transports and configuration. Clutch only ever fast-forwards
//! `refs/clutch/log` on a remote, with an explicit expected old value.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{ObjectId, Store, LOG_REF};
use crate::{Error, Result};

/// How a push went.
#[derive(Debug)]
pub enum Pushed {
    Ok,
    /// The remote moved since it was read (a lost race): fetch and try again.
    Stale(String),
    /// The remote refused for a reason retrying will not fix (its hook, permissions).
    Refused(String),
    /// This repository's own pre-push hook stopped the push before anything left.
    RefusedHere(String),
}

impl Store {
    fn run_git(&self, args: &[&str]) -> Result<Output> {
        let mut command = Command::new("git");
        command.arg("--git-dir").arg(self.git_dir()).args(args).env("GIT_TERMINAL_PROMPT", "0");
        command.output().map_err(|err| Error::internal(format!("cannot run git {}: {err}", args.join(" "))))
    }

    /// The configured remotes.
    pub fn remotes(&self) -> Result<Vec<String>> {
        let output = self.run_git(&["remote"])?;
        Ok(String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).filter(|l| !l.is_empty()).collect())
    }

    /// All values of a multi-valued git config key.
    pub fn config_all(&self, key: &str) -> Result<Vec<String>> {
        let output = self.run_git(&["config", "--get-all", key])?;
        Ok(String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).collect())
    }

    /// Set a git config value (or add one to a multi-valued key).
    pub fn config_set(&self, key: &str, value: &str, add: bool) -> Result<()> {
        let args: Vec<&str> = if add { vec!["config", "--add", key, value] } else { vec!["config", key, value] };
        let output = self.run_git(&args)?;
        if !output.status.success() {
            return Err(Error::internal(format!("git config {key} failed: {}", String::from_utf8_lossy(&output.stderr).trim())));
        }
        Ok(())
    }

    /// Fetch the remote's org log; `None` when the remote has none. Nothing but FETCH_HEAD
    /// and unreferenced objects changes here: the caller decides what to do with the head.
    pub fn fetch_log(&self, remote: &str) -> Result<Option<ObjectId>> {
        // `--refmap=`: the configured refspecs must not move refs/remotes/<remote>/clutch/log
        // before the fetched log has been checked (a foreign org's log must change nothing).
        let output = self.run_git(&["fetch", "--quiet", "--no-tags", "--refmap=", remote, LOG_REF])?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stderr.contains("couldn't find remote ref") {
                return Ok(None);
            }
            return Err(
                Error::user(format!("cannot fetch from '{remote}': {}", stderr.trim())).hint("check the remote with: git remote -v")
            );
        }
        let fetch_head = std::fs::read_to_string(self.git_dir().join("FETCH_HEAD"))
            .map_err(|err| Error::internal(format!("cannot read FETCH_HEAD after fetching: {err}")))?;
        let oid = fetch_head.split_whitespace().next().and_then(|hex| ObjectId::from_hex(hex.as_bytes()).ok());
        oid.map(Some).ok_or_else(|| Error::internal("FETCH_HEAD does not name the fetched log"))
    }

    /// Push `new` to the remote's `refs/clutch/log`, expecting it at `expected` (None: absent).
    /// Never forced: only a fast-forward with a matching lease goes through.
    pub fn push_log(&self, remote: &str, new: ObjectId, expected: Option<ObjectId>) -> Result<Pushed> {
        let lease = format!("--force-with-lease={LOG_REF}:{}", expected.map(|e| e.to_string()).unwrap_or_default());
        let refspec = format!("{new}:{LOG_REF}");
        let output = self.run_git(&["push", "--porcelain", "--quiet", &lease, remote, &refspec])?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            return Ok(Pushed::Ok);
        }
        let line = stdout.lines().find(|l| l.starts_with('!')).unwrap_or("").to_string();
        let raced = ["stale info", "fetch first", "non-fast-forward", "failed to update ref", "cannot lock ref"];
        if raced.iter().any(|r| line.contains(r) || stderr.contains(r)) {
            return Ok(Pushed::Stale(line));
        }
        // Say why in one line: clutch's own refusals (from the remote's pre-receive, or from the
        // local pre-push) when there are any, else what git or the remote said.
        let refusals: Vec<&str> = stderr
            .lines()
            .map(|l| l.strip_prefix("remote: ").unwrap_or(l).trim())
            .filter_map(|l| l.strip_prefix("clutch: refused: "))
            .collect();
        let by_remote = stderr.lines().any(|l| l.starts_with("remote: "));
        let reason = if !refusals.is_empty() {
            refusals.join("; ")
        } else {
            let remote_says: Vec<&str> =
                stderr.lines().filter_map(|l| l.strip_prefix("remote: ")).map(str::trim).filter(|l| !l.is_empty()).collect();
            if remote_says.is_empty() {
                line.trim().trim_start_matches('!').trim().to_string()
            } else {
                remote_says.join("; ")
            }
        };
        Ok(if by_remote || refusals.is_empty() { Pushed::Refused(reason) } else { Pushed::RefusedHere(reason) })
    }

    /// Record where the remote's log is (`refs/remotes/<remote>/clutch/log`).
    pub fn set_tracking(&self, remote: &str, head: ObjectId) -> Result<()> {
        let name = format!("refs/remotes/{remote}/clutch/log");
        let output = self.run_git(&["update-ref", &name, &head.to_string()])?;
        if !output.status.success() {
            return Err(Error::internal(format!("cannot update {name}: {}", String::from_utf8_lossy(&output.stderr).trim())));
        }
        Ok(())
    }

    /// The root of `head`'s first-parent line: a log's genesis, hence its org id.
    pub fn root_of(&self, head: ObjectId) -> Result<ObjectId> {
        let (chain, _) = self.first_parent_chain(head, None)?;
        Ok(*chain.last().expect("a chain holds at least its head"))
    }

    /// A repository view for a server-side hook: git's receive quarantine keeps the pushed
    /// objects in a directory only the environment names, which gix does not read; this makes
    /// a scratch repository whose alternates are the quarantine and the real object store.
    pub fn open_quarantined(git_dir: &Path, quarantine: &Path, scratch: &Path) -> Result<Store> {
        let objects = scratch.join("objects");
        std::fs::create_dir_all(objects.join("info"))?;
        std::fs::create_dir_all(scratch.join("refs"))?;
        std::fs::write(scratch.join("HEAD"), "ref: refs/heads/main\n")?;
        std::fs::write(scratch.join("config"), "[core]\n\trepositoryformatversion = 0\n\tbare = true\n")?;
        let real_objects = std::fs::canonicalize(git_dir.join("objects"))?;
        let quarantine = std::fs::canonicalize(quarantine)?;
        std::fs::write(objects.join("info").join("alternates"), format!("{}\n{}\n", quarantine.display(), real_objects.display()))?;
        let mut store = Store::open(scratch)?;
        store.cache_override = Some(git_dir.join("clutch"));
        Ok(store)
    }
}

/// A scratch directory removed when dropped.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
