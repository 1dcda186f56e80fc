//! Project branches: what PRs point at and what merges move.
//!
//! Trees are merged by `git merge-tree --write-tree` (git owns merge semantics); the merge
//! commit itself is built and signed here like any event commit, so `git verify-commit`
//! accepts it with the same allowed-signers file.

use std::path::{Path, PathBuf};
use std::process::Command;

use ed25519_dalek::SigningKey;
use gix::objs::{Kind, WriteTo as _};

use super::{bstring, ObjectId, Prepared, Store};
use crate::sign;
use crate::{Error, Result};

/// The outcome of merging two commits' trees.
#[derive(Debug)]
pub enum TreeMerge {
    Clean(ObjectId),
    Conflict(Vec<String>),
}

impl Store {
    /// The commit a local branch points at.
    pub fn branch(&self, name: &str) -> Result<Option<ObjectId>> {
        self.resolve(&format!("refs/heads/{name}"))
    }

    /// The branch HEAD names, if HEAD is on a branch.
    pub fn current_branch(&self) -> Option<String> {
        let head = self.repo.head_name().ok()??;
        head.as_bstr().to_string().strip_prefix("refs/heads/").map(str::to_string)
    }

    /// The commit HEAD points at.
    pub fn head_commit(&self) -> Result<Option<ObjectId>> {
        Ok(self.repo.head_id().ok().map(|id| id.detach()))
    }

    /// A git command on this repository.
    pub fn git(&self) -> Command {
        let mut command = Command::new("git");
        command.arg("--git-dir").arg(self.git_dir());
        if let Some(work) = self.work_dir() {
            command.arg("--work-tree").arg(work);
        }
        command
    }

    fn git_output(&self, args: &[&str]) -> Result<std::process::Output> {
        self.git().args(args).output().map_err(|err| Error::internal(format!("cannot run git {}: {err}", args.join(" "))))
    }

    /// Merge the trees of `base` and `head` the way `git merge` would.
    pub fn merge_trees(&self, base: ObjectId, head: ObjectId) -> Result<TreeMerge> {
        let output =
            self.git_output(&["merge-tree", "--write-tree", "--name-only", "--no-messages", &base.to_string(), &head.to_string()])?;
        let text = String::from_utf8_lossy(&output.stdout);
        let mut lines = text.lines();
        let tree = lines.next().and_then(|l| ObjectId::from_hex(l.trim().as_bytes()).ok());
        match (output.status.code(), tree) {
            (Some(0), Some(tree)) => Ok(TreeMerge::Clean(tree)),
            (Some(1), _) => Ok(TreeMerge::Conflict(lines.filter(|l| !l.is_empty()).map(str::to_string).collect())),
            _ => Err(Error::internal(format!("git merge-tree failed: {}", String::from_utf8_lossy(&output.stderr).trim()))),
        }
    }

    /// Build and sign a merge commit of `tree` with `parents`, by `actor`. Nothing is written.
    pub fn prepare_merge(
        &self,
        tree: ObjectId,
        parents: &[ObjectId],
        message: &str,
        actor: &str,
        signer: &SigningKey,
        time: i64,
    ) -> Result<Prepared> {
        let who = gix::actor::Signature {
            name: bstring(actor),
            email: bstring(&format!("{actor}@clutch.invalid")),
            time: gix::date::Time { seconds: time, offset: 0 },
        };
        let mut commit = gix::objs::Commit {
            tree,
            parents: parents.iter().copied().collect(),
            author: who.clone(),
            committer: who,
            encoding: None,
            message: bstring(message),
            extra_headers: Vec::new(),
        };
        let mut unsigned = Vec::new();
        commit.write_to(&mut unsigned).map_err(|err| Error::internal(format!("cannot encode commit: {err}")))?;
        commit.extra_headers.push((bstring("gpgsig"), bstring(&sign::sign(signer, &unsigned))));
        let mut signed = Vec::new();
        commit.write_to(&mut signed).map_err(|err| Error::internal(format!("cannot encode commit: {err}")))?;
        let oid = gix::objs::compute_hash(gix::hash::Kind::Sha1, Kind::Commit, &signed).map_err(|err| Error::internal(err.to_string()))?;
        Ok(Prepared { oid, objects: vec![(Kind::Commit, oid, signed)] })
    }

    /// The tree of a commit.
    pub fn tree_of(&self, commit: ObjectId) -> Result<ObjectId> {
        let object = self.repo.find_object(commit).map_err(|err| Error::user(format!("no commit {commit}: {err}")))?;
        let parsed = gix::objs::CommitRef::from_bytes(&object.data, gix::hash::Kind::Sha1)
            .map_err(|err| Error::internal(format!("commit {commit} is malformed: {err}")))?;
        Ok(parsed.tree())
    }

    /// Whether `branch` is checked out in this work tree with no uncommitted changes.
    pub fn checked_out_and_clean(&self, branch: &str) -> Result<bool> {
        if self.work_dir().is_none() || self.current_branch().as_deref() != Some(branch) {
            return Ok(false);
        }
        Ok(self.uncommitted()?.is_empty())
    }

    /// `git status --porcelain` of the work tree: changed, staged and untracked files.
    pub fn uncommitted(&self) -> Result<String> {
        let status = self.git_output(&["status", "--porcelain"])?;
        if !status.status.success() {
            return Err(Error::internal(format!("git status failed: {}", String::from_utf8_lossy(&status.stderr).trim())));
        }
        Ok(String::from_utf8_lossy(&status.stdout).into_owned())
    }

    /// Bring the index and work tree from `old` to `new` (after the checked-out branch moved).
    pub fn update_work_tree(&self, old: ObjectId, new: ObjectId) -> Result<bool> {
        let output = self.git_output(&["read-tree", "-m", "-u", &old.to_string(), &new.to_string()])?;
        Ok(output.status.success())
    }

    /// A temporary detached worktree at `commit`, removed when dropped.
    pub fn temp_worktree(&self, commit: ObjectId) -> Result<Worktree> {
        let _serial = WORKTREES.lock().unwrap_or_else(|e| e.into_inner());
        let dir = self.worktree_root()?.join(format!("{}-{}", &commit.to_string()[..12], std::process::id()));
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let path = dir.to_string_lossy().into_owned();
        let output = worktree_add(self.git_dir(), &["--detach", "--force", &path, &commit.to_string()])?;
        if !output.status.success() {
            return Err(Error::internal(format!("cannot check out {commit}: {}", first_line(&output.stderr))));
        }
        let dot_git = std::fs::read_to_string(dir.join(".git")).unwrap_or_default();
        Ok(Worktree { git_dir: self.git_dir().to_path_buf(), path: dir, dot_git })
    }
}

/// A worktree that removes itself.
#[derive(Debug)]
pub struct Worktree {
    git_dir: PathBuf,
    path: PathBuf,
    /// The worktree's `.git` file as git wrote it: where its admin directory is. An agent can
    /// rewrite the file; clutch never follows what it says afterwards.
    dot_git: String,
}

impl Worktree {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `git worktree add ARGS`, tried again a few times when it trips over another process adding or
/// removing a worktree at the same moment.
fn worktree_add(git_dir: &Path, args: &[&str]) -> Result<std::process::Output> {
    let mut attempt = 0;
    loop {
        let output = Command::new("git")
            .arg("--git-dir")
            .arg(git_dir)
            .args(["worktree", "add"])
            .args(args)
            .output()
            .map_err(|err| Error::internal(format!("cannot run git worktree: {err}")))?;
        attempt += 1;
        if output.status.success() || attempt >= 6 {
            return Ok(output);
        }
        std::thread::sleep(std::time::Duration::from_millis(20 * attempt));
    }
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
}

/// `git worktree add` reads every other worktree's admin files, so adding one while another is
/// being added or removed fails: the runs of one process take turns, and a failed add is tried
/// again (another process may hold the same moment).
static WORKTREES: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Drop for Worktree {
    fn drop(&mut self) {
        let _serial = WORKTREES.lock().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("git").arg("--git-dir").arg(&self.git_dir).args(["worktree", "remove", "--force"]).arg(&self.path).output();
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

impl Store {
    /// A worktree on `branch`, (re)set to `start`, removed when dropped. Used by runs: each
    /// (agent, task) gets its own.
    pub fn branch_worktree(&self, branch: &str, start: ObjectId, name: &str) -> Result<Worktree> {
        let _serial = WORKTREES.lock().unwrap_or_else(|e| e.into_inner());
        let dir = self.worktree_root()?.join(name);
        if dir.exists() {
            let _ = Command::new("git").arg("--git-dir").arg(self.git_dir()).args(["worktree", "remove", "--force"]).arg(&dir).output();
            let _ = std::fs::remove_dir_all(&dir);
        }
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let dir_text = dir.to_string_lossy().into_owned();
        let output = worktree_add(self.git_dir(), &["--quiet", "--force", "-B", branch, &dir_text, &start.to_string()])?;
        if !output.status.success() {
            return Err(Error::internal(format!("cannot check out {branch}: {}", first_line(&output.stderr))));
        }
        let dot_git = std::fs::read_to_string(dir.join(".git")).unwrap_or_default();
        Ok(Worktree { git_dir: self.git_dir().to_path_buf(), path: dir, dot_git })
    }

    /// Where run worktrees go: `.clutch/worktrees/` in the work tree (kept out of `git status` by
    /// `.git/info/exclude`), not under `.git/`, where some agents (Claude Code) refuse to write.
    /// A bare repository keeps them under its git directory.
    pub fn worktree_root(&self) -> Result<PathBuf> {
        let Some(work) = self.work_dir() else {
            return Ok(self.cache_dir().join("worktrees"));
        };
        let exclude = self.repo.common_dir().join("info").join("exclude");
        let listed = std::fs::read_to_string(&exclude).unwrap_or_default();
        if !listed.lines().any(|l| l.trim() == "/.clutch-memory/") {
            std::fs::create_dir_all(exclude.parent().expect("info/ has a parent"))?;
            let mut text = listed;
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            if !text.lines().any(|l| l.trim() == "/.clutch/") {
                text.push_str("# clutch: agents' worktrees\n/.clutch/\n");
            }
            text.push_str("# clutch: an agent's memory files in its worktree, never committed there\n/.clutch-memory/\n");
            std::fs::write(&exclude, text)?;
        }
        Ok(work.join(".clutch").join("worktrees"))
    }

    /// Delete a ref if it still points at `expected`.
    pub fn delete_ref(&self, name: &str, expected: ObjectId) -> Result<()> {
        let output = self.git_output(&["update-ref", "-d", name, &expected.to_string()])?;
        if !output.status.success() {
            return Err(Error::internal(format!("cannot delete {name}: {}", first_line(&output.stderr))));
        }
        Ok(())
    }

    /// Stage everything in a worktree and return the tree it makes.
    pub fn stage_all(&self, worktree: &Worktree) -> Result<ObjectId> {
        // The agent had the worktree to itself: its `.git` file (and anything it points at) may
        // be hostile, e.g. a config whose core.fsmonitor runs a command. Use the admin directory
        // git recorded before the run, and no hooks or fsmonitor.
        let now = std::fs::read_to_string(worktree.path.join(".git")).unwrap_or_default();
        if now != worktree.dot_git {
            return Err(Error::user("the agent changed the worktree's .git file: nothing of this run is committed"));
        }
        let admin = worktree
            .dot_git
            .trim()
            .strip_prefix("gitdir:")
            .map(str::trim)
            .map(PathBuf::from)
            .ok_or_else(|| Error::internal("a worktree without a gitdir"))?;
        let run = |args: &[&str]| {
            Command::new("git")
                .arg("--git-dir")
                .arg(&admin)
                .arg("--work-tree")
                .arg(&worktree.path)
                .args(["-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null"])
                .args(args)
                .output()
                .map_err(|err| Error::internal(format!("cannot run git {}: {err}", args.join(" "))))
        };
        let added = run(&["add", "-A"])?;
        if !added.status.success() {
            return Err(Error::internal(format!("git add failed: {}", String::from_utf8_lossy(&added.stderr).trim())));
        }
        let tree = run(&["write-tree"])?;
        let hex = String::from_utf8_lossy(&tree.stdout).trim().to_string();
        ObjectId::from_hex(hex.as_bytes())
            .map_err(|_| Error::internal(format!("git write-tree failed: {}", String::from_utf8_lossy(&tree.stderr).trim())))
    }
}
