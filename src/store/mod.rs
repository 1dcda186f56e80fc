//! The only module that talks to git objects and refs.
//!
//! An event becomes three or more objects (the `event.json` blob, content blobs under `files/`,
//! a tree, a commit) and one move of `refs/clutch/log`. The commit is built by hand so that its
//! bytes are exactly what git would write, signed, and only then hashed: those bytes are what
//! `git verify-commit` checks. The ref moves by compare-and-swap; a lost race is reported as
//! [`Moved`] so the caller can re-read, re-validate and retry.

mod branch;
mod commit;
mod memory;
mod remote;

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use gix::bstr::{BString, ByteSlice};
use gix::objs::Write as _;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::Target;
pub use gix::ObjectId;

pub use branch::{TreeMerge, Worktree};
pub use commit::RawEvent;
pub use memory::{memory_ref, MEMORY_FILES};
pub use remote::{Pushed, Scratch};

use crate::event::Event;
use crate::{Error, Result};

/// The head of the org log.
pub const LOG_REF: &str = "refs/clutch/log";

/// A git repository holding (or about to hold) an org log.
pub struct Store {
    repo: gix::Repository,
    /// Where the derived-state cache lives when not under this repository (server hooks).
    cache_override: Option<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("git_dir", &self.repo.git_dir()).finish()
    }
}

/// An event commit built and signed in memory, not yet written.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub oid: ObjectId,
    objects: Vec<(gix::objs::Kind, ObjectId, Vec<u8>)>,
}

/// The compare-and-swap of `refs/clutch/log` failed: another writer moved it first.
#[derive(Debug)]
pub struct Moved;

impl Store {
    /// Find the repository that contains `dir`, as git does.
    pub fn discover(dir: &Path) -> Result<Store> {
        let repo = gix::discover(dir).map_err(|_| {
            Error::user(format!("not a git repository: {}", dir.display()))
                .hint("run clutch inside a git repository, or create one with: git init")
        })?;
        Ok(Store { repo, cache_override: None })
    }

    pub fn open(path: &Path) -> Result<Store> {
        let repo = gix::open(path).map_err(|err| Error::user(format!("cannot open git repository {}: {err}", path.display())))?;
        Ok(Store { repo, cache_override: None })
    }

    pub fn git_dir(&self) -> &Path {
        self.repo.git_dir()
    }

    pub fn work_dir(&self) -> Option<&Path> {
        self.repo.workdir()
    }

    /// Where clutch keeps derived, machine-local data for this repository.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_override.clone().unwrap_or_else(|| self.repo.common_dir().join("clutch"))
    }

    /// The current head of the org log, if there is one.
    pub fn head(&self) -> Result<Option<ObjectId>> {
        self.resolve(LOG_REF)
    }

    /// The object a full ref name points at.
    pub fn resolve(&self, name: &str) -> Result<Option<ObjectId>> {
        let reference = self.repo.try_find_reference(name).map_err(|err| Error::internal(format!("cannot read {name}: {err}")))?;
        Ok(reference.and_then(|r| r.target().try_id().map(|id| id.to_owned())))
    }

    /// A string value from the repository's git config (`clutch.actor`, …).
    pub fn config_string(&self, key: &str) -> Option<String> {
        self.repo.config_snapshot().string(key).map(|v| v.to_string())
    }

    /// Build, sign and hash an event commit. Nothing is written.
    pub fn prepare(
        &self,
        event: &Event,
        files: &[(String, Vec<u8>)],
        parents: &[ObjectId],
        signer: &SigningKey,
        time: i64,
    ) -> Result<Prepared> {
        commit::prepare(event, files, parents, signer, time)
    }

    /// Write a prepared event's objects (loose). Idempotent.
    pub fn write(&self, prepared: &Prepared) -> Result<()> {
        for (kind, id, bytes) in &prepared.objects {
            self.repo
                .objects
                .write_buf_with_known_id(*kind, bytes, *id)
                .map_err(|err| Error::internal(format!("cannot write object {id}: {err}")))?;
        }
        Ok(())
    }

    /// Move `refs/clutch/log` from `old` to `new`, only if it still points at `old`.
    pub fn update_log(&self, old: Option<ObjectId>, new: ObjectId, actor: &str, time: i64) -> Result<Result<(), Moved>> {
        self.update_ref(LOG_REF, old, new, actor, time, "clutch: append")
    }

    /// Compare-and-swap of any ref. `Ok(Err(Moved))` when it no longer points at `old`.
    pub fn update_ref(
        &self,
        name: &str,
        old: Option<ObjectId>,
        new: ObjectId,
        actor: &str,
        time: i64,
        message: &str,
    ) -> Result<Result<(), Moved>> {
        let expected = match old {
            Some(old) => PreviousValue::MustExistAndMatch(Target::Object(old)),
            None => PreviousValue::MustNotExist,
        };
        let edit = RefEdit {
            change: Change::Update {
                log: LogChange { mode: RefLog::AndReference, force_create_reflog: false, message: message.into() },
                expected,
                new: Target::Object(new),
            },
            name: name.try_into().map_err(|err| Error::internal(format!("bad ref name {name}: {err}")))?,
            deref: false,
        };
        let email = format!("{actor}@clutch.invalid");
        let when = format!("{time} +0000");
        let committer = gix::actor::SignatureRef { name: actor.as_bytes().as_bstr(), email: email.as_bytes().as_bstr(), time: &when };
        match self.repo.edit_references_as([edit], Some(committer)) {
            Ok(_) => Ok(Ok(())),
            Err(err) if err.is_conflict() || err.is_retryable() => Ok(Err(Moved)),
            Err(err) => {
                // A ref that appeared or moved between read and write is a lost race too.
                let now = self.resolve(name)?;
                if now != old {
                    Ok(Err(Moved))
                } else {
                    Err(Error::internal(format!("cannot update {name}: {err}")))
                }
            }
        }
    }

    /// Read one event commit with everything replay needs to judge it.
    pub fn read_event(&self, oid: ObjectId) -> Result<RawEvent> {
        commit::read(&self.repo, oid)
    }

    /// The parents of a commit.
    pub fn parents(&self, oid: ObjectId) -> Result<Vec<ObjectId>> {
        let object = self.find(oid)?;
        commit::parents_of(&object.data).map_err(|why| Error::internal(format!("commit {oid}: {why}")))
    }

    /// Commits from `head` back along first parents, newest first, stopping before `stop`.
    /// The flag says whether `stop` was met (false: walked to the root without meeting it).
    ///
    /// The walk uses git's commit-graph file when there is one (written by `git gc`), so a long
    /// log is walked without inflating a single commit.
    pub fn first_parent_chain(&self, head: ObjectId, stop: Option<ObjectId>) -> Result<(Vec<ObjectId>, bool)> {
        let walk = self
            .repo
            .rev_walk([head])
            .first_parent_only()
            .use_commit_graph(true)
            .all()
            .map_err(|err| Error::internal(format!("cannot walk {LOG_REF}: {err}")))?;
        let mut chain = Vec::new();
        for info in walk {
            let oid = info.map_err(|err| Error::internal(format!("cannot walk {LOG_REF}: {err}")))?.id;
            if Some(oid) == stop {
                return Ok((chain, true));
            }
            chain.push(oid);
        }
        Ok((chain, stop.is_none()))
    }

    /// The commits a merge brings in: reachable from `others`, not from `first`.
    pub fn merged_in(&self, first: ObjectId, others: &[ObjectId]) -> Result<Vec<ObjectId>> {
        let walk = self
            .repo
            .rev_walk(others.iter().copied())
            .with_hidden([first])
            .all()
            .map_err(|err| Error::internal(format!("cannot walk merge parents: {err}")))?;
        let mut out = Vec::new();
        for info in walk {
            out.push(info.map_err(|err| Error::internal(format!("cannot walk merge parents: {err}")))?.id);
        }
        Ok(out)
    }

    /// Whether the object database has this object.
    pub fn has(&self, oid: ObjectId) -> bool {
        self.repo.has_object(oid)
    }

    /// Every commit reachable from `head`.
    pub fn merged_in_all(&self, head: ObjectId) -> Result<Vec<ObjectId>> {
        let walk = self.repo.rev_walk([head]).all().map_err(|err| Error::internal(format!("cannot walk history: {err}")))?;
        walk.map(|info| info.map(|i| i.id).map_err(|err| Error::internal(format!("cannot walk history: {err}")))).collect()
    }

    /// Whether `ancestor` is reachable from `descendant`.
    pub fn is_ancestor(&self, ancestor: ObjectId, descendant: ObjectId) -> Result<bool> {
        if ancestor == descendant {
            return Ok(true);
        }
        let walk = self.repo.rev_walk([descendant]).all().map_err(|err| Error::internal(format!("cannot walk history: {err}")))?;
        for info in walk {
            if info.map_err(|err| Error::internal(format!("cannot walk history: {err}")))?.id == ancestor {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The content of a blob.
    pub fn blob(&self, oid: ObjectId) -> Result<Vec<u8>> {
        let object = self.find(oid)?;
        if object.kind != gix::objs::Kind::Blob {
            return Err(Error::internal(format!("{oid} is a {}, not a blob", object.kind)));
        }
        Ok(object.detach().data)
    }

    fn find(&self, oid: ObjectId) -> Result<gix::Object<'_>> {
        self.repo.find_object(oid).map_err(|err| Error::internal(format!("cannot read object {oid}: {err}")))
    }

    /// Parse a full hex object id.
    pub fn parse_oid(text: &str) -> Option<ObjectId> {
        ObjectId::from_hex(text.as_bytes()).ok()
    }
}

/// Convenience for message bytes.
pub(crate) fn bstring(text: &str) -> BString {
    BString::from(text)
}
