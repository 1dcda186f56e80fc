//! One function per user operation. Each mutation is a transaction: read the state, build the
//! events, apply them to the state (the reducer refuses what a gate forbids), write the
//! objects, then move `refs/clutch/log` by compare-and-swap. On a lost race the whole thing
//! runs again against the new state, so two writers never lose an event and a decision made
//! against stale state (two claims of one task) is re-judged.

pub mod apply;
pub mod artifact;
pub mod auth;
pub mod demo;
pub mod governance;
pub mod hook;
pub mod org;
pub mod pr;
pub mod replay;
pub mod report;
pub mod run;
pub mod sync;
pub mod task;
pub mod test_run;
pub mod verify;
pub mod work;

use std::path::Path;

use ed25519_dalek::SigningKey;

use crate::env::{format_time, Env};
use crate::event::{Cost, Event, Payload};
use crate::sign::{KeyStore, PublicKey};
use crate::state::{self, Applied, State, Verified};
use crate::store::{ObjectId, Store};
use crate::{Error, Result};

pub use replay::Loaded;

/// What every operation works with.
#[derive(Debug)]
pub struct Ctx {
    pub store: Store,
    pub env: Env,
    pub keys: KeyStore,
}

impl Ctx {
    pub fn new(store: Store, env: Env) -> Self {
        let keys = KeyStore::for_env(&env);
        Ctx { store, env, keys }
    }

    /// The same context with its own repository handle, for another thread (a gix
    /// repository is not shared between threads).
    pub fn reopen(&self) -> Result<Ctx> {
        Ctx::open(&self.place(), self.env.clone())
    }

    /// Where this repository is: what [`Ctx::open`] takes to open it again.
    pub fn place(&self) -> std::path::PathBuf {
        self.store.work_dir().map(Path::to_path_buf).unwrap_or_else(|| self.store.git_dir().to_path_buf())
    }

    pub fn open(place: &Path, env: Env) -> Result<Ctx> {
        Ok(Ctx::new(Store::open(place)?, env))
    }

    /// State at the current head (cached), checked against the org pin.
    pub fn load(&self) -> Result<Loaded> {
        let loaded = replay::load(&self.store)?;
        if loaded.head.is_none() {
            return Err(
                Error::user("this repository has no clutch org yet").hint("create one with: git clutch init --name ORG --founder ID")
            );
        }
        replay::check_pin(&self.store, &loaded.state)?;
        if loaded.state.org.is_none() {
            return Err(
                Error::user("refs/clutch/log does not start with a valid ORG_CREATED").hint("see what is wrong with: git clutch verify")
            );
        }
        Ok(loaded)
    }

    /// Who acts: `--as`, else `CLUTCH_ACTOR`, else `git config clutch.actor`.
    pub fn actor(&self, flag: Option<&str>) -> Result<String> {
        flag.map(str::to_string)
            .or_else(|| self.env.actor.clone())
            .or_else(|| self.store.config_string("clutch.actor"))
            .ok_or_else(|| Error::user("no acting agent").hint("pass --as AGENT, set CLUTCH_ACTOR, or: git config clutch.actor AGENT"))
    }
}

/// An event to append, before it has a clock, a time or a signature.
#[derive(Debug, Clone)]
pub struct Draft {
    pub project: Option<String>,
    pub task: Option<String>,
    pub refs: Vec<String>,
    pub cost: Cost,
    pub payload: Payload,
    /// Content blobs for `files/` in the event's tree.
    pub files: Vec<(String, Vec<u8>)>,
}

impl Draft {
    pub fn new(payload: Payload) -> Self {
        Draft { project: None, task: None, refs: Vec::new(), cost: Cost::default(), payload, files: Vec::new() }
    }
    pub fn task(mut self, task: &crate::state::Task) -> Self {
        self.task = Some(task.id.clone());
        self.project = task.project.clone();
        self
    }
}

/// An appended event.
#[derive(Debug, Clone)]
pub struct Written {
    pub commit: ObjectId,
    /// The task the event is about, if any.
    pub task: Option<String>,
    pub applied: Applied,
}

const MAX_ATTEMPTS: usize = 64;

/// Append the events `build` makes from the current state, as `actor`.
///
/// `build` runs again after every lost race, against the newer state; an error from it or a
/// refusal from the reducer ends the transaction with nothing written.
pub fn transact(ctx: &Ctx, actor: &str, mut build: impl FnMut(&State) -> Result<Vec<Draft>>) -> Result<(Vec<Written>, Loaded)> {
    for attempt in 0..MAX_ATTEMPTS {
        let loaded = ctx.load()?;
        let agent = loaded
            .state
            .agents
            .get(actor)
            .ok_or_else(|| Error::user(format!("unknown agent '{actor}'")).hint("see the roster with: git clutch agent list"))?;
        if agent.status != state::AgentStatus::Active {
            return Err(Error::user(format!("agent '{actor}' was fired and may no longer act")));
        }
        let public = PublicKey::parse_openssh(&agent.public_key)?;
        let key = ctx.keys.load(actor, &public)?;
        let drafts = build(&loaded.state)?;
        if drafts.is_empty() {
            return Ok((Vec::new(), loaded));
        }
        match append(ctx, &key, actor, loaded, drafts)? {
            Ok(done) => return Ok(done),
            Err(_moved) => backoff(attempt),
        }
    }
    Err(Error::conflict(format!("refs/clutch/log kept moving: gave up after {MAX_ATTEMPTS} attempts")).hint("try again"))
}

/// Sign, apply, write, and compare-and-swap one batch of events on top of `loaded`.
/// `Ok(Err(Moved))` when the log moved underneath.
pub fn append(
    ctx: &Ctx,
    key: &SigningKey,
    actor: &str,
    loaded: Loaded,
    drafts: Vec<Draft>,
) -> Result<Result<(Vec<Written>, Loaded), crate::store::Moved>> {
    let now = ctx.env.now();
    let signer = PublicKey::of(key).to_openssh();
    let Loaded { mut state, head, head_clock, behind } = loaded;
    let expected = head;
    let mut parent = head;
    let mut clock = head_clock.max(state.clock);
    let mut prepared = Vec::with_capacity(drafts.len());
    let mut written = Vec::with_capacity(drafts.len());
    for draft in drafts {
        clock = clock.checked_add(1).ok_or_else(|| Error::internal("the log's Lamport clock is exhausted"))?;
        let task = draft.task.clone();
        let event = Event {
            actor: actor.to_string(),
            at: format_time(now),
            clock,
            project: draft.project,
            task: draft.task,
            refs: draft.refs,
            cost: draft.cost,
            payload: draft.payload,
        };
        let parents: Vec<ObjectId> = parent.into_iter().collect();
        let commit = ctx.store.prepare(&event, &draft.files, &parents, key, now)?;
        let commit_hex = commit.oid.to_string();
        let files: Vec<(String, String)> = draft
            .files
            .iter()
            .map(|(name, bytes)| {
                let oid = gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, bytes).map(|o| o.to_string());
                (name.clone(), oid.unwrap_or_default())
            })
            .collect();
        let verified = Verified { commit: &commit_hex, signer: &signer, event: &event, files: &files, is_root: parent.is_none() };
        let applied = state::apply(&mut state, &verified).map_err(|why| Error::user(format!("refused: {why}")))?;
        parent = Some(commit.oid);
        written.push(Written { commit: commit.oid, task, applied });
        prepared.push(commit);
    }
    for commit in &prepared {
        ctx.store.write(commit)?;
    }
    let new_head = parent.expect("at least one draft");
    if let Err(moved) = ctx.store.update_log(expected, new_head, actor, now)? {
        return Ok(Err(moved));
    }
    let mut loaded = Loaded { state, head: Some(new_head), head_clock: clock, behind: behind + written.len() as u64 };
    if loaded.behind >= replay::CACHE_LAG {
        replay::write_cache(&ctx.store, &loaded);
        loaded.behind = 0;
    }
    maybe_pack(ctx, clock);
    Ok(Ok((written, loaded)))
}

/// Loose objects pile up at ~4 per event; let git pack them now and then.
fn maybe_pack(ctx: &Ctx, clock: u64) {
    if clock % 1000 == 0 {
        let _ = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(ctx.store.git_dir())
            .args(["gc", "--auto", "--quiet"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Randomized exponential backoff between attempts, so racing writers spread out.
fn backoff(attempt: usize) {
    let mut byte = [0u8; 1];
    let _ = getrandom::getrandom(&mut byte);
    let base = 1u64 << attempt.min(6);
    let micros = base * 200 + u64::from(byte[0]) * 4 * base;
    std::thread::sleep(std::time::Duration::from_micros(micros));
}
