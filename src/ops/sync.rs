//! Sharing the log through any git remote: `remote setup`, `sync`, `clone`.
//!
//! Sync fetches the remote's log, verifies every new event (a remote is trusted no more than a
//! file on disk), joins diverged logs with a signed LOG_MERGED commit, and pushes with an
//! explicit expected old value. A lost race is retried from the fetch. Because every clone
//! replays the same DAG in the same order, clones that have exchanged everything compute the
//! same state, whatever order they synced in.

use std::collections::HashSet;

use serde::Serialize;

use crate::event::{LogMerged, Payload};
use crate::sign::PublicKey;
use crate::state::{self, Rejection, Verified};
use crate::store::{ObjectId, Pushed};
use crate::{Error, Result};

use super::{replay, Ctx, Draft, Loaded};

/// The refspecs `remote setup` adds: fetched heads land beside the remote's branches, never
/// over the local log; pushes never force.
pub fn refspecs(remote: &str) -> (Vec<String>, Vec<String>) {
    (
        vec![
            format!("+refs/clutch/log:refs/remotes/{remote}/clutch/log"),
            format!("+refs/clutch/memory/*:refs/remotes/{remote}/clutch/memory/*"),
        ],
        vec!["refs/clutch/*:refs/clutch/*".to_string(), "HEAD".to_string()],
    )
}

/// Make plain `git fetch` / `git push` carry the org log. Returns the refspecs it added.
pub fn setup_remote(ctx: &Ctx, remote: &str) -> Result<Vec<String>> {
    if !ctx.store.remotes()?.iter().any(|r| r == remote) {
        return Err(Error::user(format!("no remote '{remote}'")).hint(format!("add it first: git remote add {remote} URL")));
    }
    let (fetch, push) = refspecs(remote);
    let mut added = Vec::new();
    for (key, specs) in [(format!("remote.{remote}.fetch"), fetch), (format!("remote.{remote}.push"), push)] {
        let existing = ctx.store.config_all(&key)?;
        for spec in specs {
            if !existing.contains(&spec) {
                ctx.store.config_set(&key, &spec, true)?;
                added.push(format!("{key} {spec}"));
            }
        }
    }
    Ok(added)
}

/// What a sync did.
#[derive(Debug, Default, Serialize)]
pub struct SyncReport {
    pub remote: String,
    /// The remote's head before the sync, if it had a log.
    pub remote_head: Option<String>,
    pub local_before: Option<String>,
    pub local_after: Option<String>,
    /// Events that arrived from the remote.
    pub events_in: u64,
    /// Events the remote received.
    pub events_out: u64,
    /// The LOG_MERGED commit, when the logs had diverged.
    pub merge: Option<String>,
    pub pushed: bool,
    /// Events from the remote that replay refused (they are kept in the DAG but never applied).
    pub rejected_in: Vec<Rejection>,
    /// Attempts it took (more than one after a lost race).
    pub attempts: u32,
}

const ATTEMPTS: u32 = 8;

pub fn sync(ctx: &Ctx, remote: &str, actor: Option<&str>) -> Result<SyncReport> {
    let mut report = SyncReport { remote: remote.to_string(), ..SyncReport::default() };
    for attempt in 1..=ATTEMPTS {
        report.attempts = attempt;
        let remote_head = ctx.store.fetch_log(remote)?;
        let local = ctx.store.head()?;
        report.remote_head = remote_head.map(|h| h.to_string());
        report.local_before = local.map(|h| h.to_string());
        if let Some(remote_head) = remote_head {
            check_same_org(ctx, remote, remote_head, local)?;
        }
        let outcome = match (local, remote_head) {
            (None, None) => {
                return Err(Error::user(format!("neither this repository nor '{remote}' has a clutch org"))
                    .hint("create one with: git clutch init --name ORG --founder ID"))
            }
            (None, Some(theirs)) => adopt(ctx, remote, theirs, &mut report)?,
            (Some(ours), None) => push(ctx, remote, ours, None, &mut report)?,
            (Some(ours), Some(theirs)) if ours == theirs => {
                ctx.store.set_tracking(remote, theirs)?;
                report.local_after = Some(ours.to_string());
                Step::Done
            }
            (Some(ours), Some(theirs)) if ctx.store.is_ancestor(theirs, ours)? => push(ctx, remote, ours, Some(theirs), &mut report)?,
            (Some(ours), Some(theirs)) if ctx.store.is_ancestor(ours, theirs)? => fast_forward(ctx, remote, ours, theirs, &mut report)?,
            (Some(ours), Some(theirs)) => merge(ctx, remote, ours, theirs, actor, &mut report)?,
        };
        match outcome {
            Step::Done => return Ok(report),
            Step::Retry => continue,
        }
    }
    Err(Error::conflict(format!("'{remote}' kept moving: gave up after {ATTEMPTS} attempts")).hint("run git clutch sync again"))
}

enum Step {
    Done,
    Retry,
}

/// A remote log must share this repository's genesis.
fn check_same_org(ctx: &Ctx, remote: &str, theirs: ObjectId, local: Option<ObjectId>) -> Result<()> {
    let their_root = ctx.store.root_of(theirs)?;
    let ours = match ctx.store.config_string("clutch.orgid") {
        Some(pinned) => Some(pinned),
        None => match local {
            Some(local) => Some(ctx.store.root_of(local)?.to_string()),
            None => None,
        },
    };
    if let Some(ours) = ours {
        if ours.as_str() != their_root.to_string().as_str() {
            return Err(Error::user(format!(
                "'{remote}' holds the log of another org (genesis {their_root}, this repository's org is {ours})"
            ))
            .hint("nothing was changed; check the remote's URL"));
        }
    }
    Ok(())
}

/// Count the events between `from` (exclusive) and `to`.
fn count_new(ctx: &Ctx, from: Option<ObjectId>, to: ObjectId) -> Result<u64> {
    if from == Some(to) {
        return Ok(0);
    }
    match from {
        Some(from) => Ok(ctx.store.merged_in(from, &[to])?.len() as u64),
        None => Ok(ctx.store.merged_in_all(to)?.len() as u64),
    }
}

/// No local log yet: verify the remote's whole log, then take it as ours and pin its org.
fn adopt(ctx: &Ctx, remote: &str, theirs: ObjectId, report: &mut SyncReport) -> Result<Step> {
    let loaded = replay::advance(&ctx.store, None, theirs)?;
    if loaded.state.org.is_none() {
        return Err(Error::user(format!("'{remote}' has a log that does not start with a valid ORG_CREATED")).hint("nothing was changed"));
    }
    report.rejected_in = loaded.state.rejected.clone();
    report.events_in = loaded.state.events + loaded.state.rejected.len() as u64;
    let now = ctx.env.now();
    if ctx.store.update_log(None, theirs, "clutch-sync", now)?.is_err() {
        return Ok(Step::Retry);
    }
    let org = loaded.state.org.as_ref().expect("checked above").id.clone();
    ctx.store.config_set("clutch.orgId", &org, false)?;
    replay::write_cache(&ctx.store, &loaded);
    ctx.store.set_tracking(remote, theirs)?;
    report.local_after = Some(theirs.to_string());
    Ok(Step::Done)
}

fn push(ctx: &Ctx, remote: &str, ours: ObjectId, theirs: Option<ObjectId>, report: &mut SyncReport) -> Result<Step> {
    let outgoing = match theirs {
        Some(theirs) => count_new(ctx, Some(theirs), ours)?,
        None => count_new(ctx, None, ours)?,
    };
    match ctx.store.push_log(remote, ours, theirs)? {
        Pushed::Ok => {
            ctx.store.set_tracking(remote, ours)?;
            report.events_out += outgoing;
            report.pushed = true;
            report.local_after = Some(ours.to_string());
            Ok(Step::Done)
        }
        Pushed::Stale(_) => Ok(Step::Retry),
        Pushed::Refused(why) => {
            Err(Error::user(format!("'{remote}' refused the log: {why}"))
                .hint("the remote's hook checks every event; see: git clutch verify"))
        }
        Pushed::RefusedHere(why) => Err(Error::user(format!("this repository's pre-push hook stopped the push: {why}"))
            .hint("nothing was sent; see: git clutch verify")),
    }
}

/// The remote is ahead: verify its new events on top of ours, then move our log.
fn fast_forward(ctx: &Ctx, remote: &str, ours: ObjectId, theirs: ObjectId, report: &mut SyncReport) -> Result<Step> {
    let before = replay::load(&ctx.store)?;
    let known: usize = before.state.rejected.len();
    let loaded = replay::advance(&ctx.store, Some(before.clone()), theirs)?;
    report.rejected_in.extend(new_rejections(&before, &loaded, known));
    report.events_in += count_new(ctx, Some(ours), theirs)?;
    let now = ctx.env.now();
    if ctx.store.update_log(Some(ours), theirs, "clutch-sync", now)?.is_err() {
        return Ok(Step::Retry);
    }
    replay::write_cache(&ctx.store, &loaded);
    ctx.store.set_tracking(remote, theirs)?;
    report.local_after = Some(theirs.to_string());
    Ok(Step::Done)
}

fn new_rejections(before: &Loaded, after: &Loaded, known: usize) -> Vec<Rejection> {
    if after.state.rejected.len() >= known && after.state.rejected[..known] == before.state.rejected[..] {
        after.state.rejected[known..].to_vec()
    } else {
        // Replayed from the root (the remote's first-parent line does not pass through ours).
        let old: HashSet<&str> = before.state.rejected.iter().map(|r| r.commit.as_str()).collect();
        after.state.rejected.iter().filter(|r| !old.contains(r.commit.as_str())).cloned().collect()
    }
}

/// Both sides moved: join them with a signed LOG_MERGED (ours first), then push it.
fn merge(ctx: &Ctx, remote: &str, ours: ObjectId, theirs: ObjectId, actor: Option<&str>, report: &mut SyncReport) -> Result<Step> {
    let actor = ctx.actor(actor)?;
    let before = replay::load(&ctx.store)?;
    let known = before.state.rejected.len();
    let (mut side, highest) = replay::apply_side(&ctx.store, before.clone(), &[theirs])?;
    let agent = side.state.active_agent(&actor).ok_or_else(|| {
        Error::user(format!("'{actor}' is not an active agent and cannot sign the merge of the two logs")).hint("sync --as an active agent")
    })?;
    let key = ctx.keys.load(&actor, &PublicKey::parse_openssh(&agent.public_key)?)?;
    let now = ctx.env.now();
    let draft = Draft::new(Payload::LogMerged(LogMerged { merged: vec![theirs.to_string()] }));
    let clock = highest.checked_add(1).ok_or_else(|| Error::internal("the log's Lamport clock is exhausted"))?;
    let event = crate::event::Event {
        actor: actor.clone(),
        at: crate::env::format_time(now),
        clock,
        project: None,
        task: None,
        refs: vec![theirs.to_string()],
        cost: draft.cost,
        payload: draft.payload,
    };
    let commit = ctx.store.prepare(&event, &[], &[ours, theirs], &key, now)?;
    let hex = commit.oid.to_string();
    let signer = PublicKey::of(&key).to_openssh();
    state::apply(&mut side.state, &Verified { commit: &hex, signer: &signer, event: &event, files: &[], is_root: false })
        .map_err(|why| Error::user(format!("cannot merge the logs: {why}")))?;
    ctx.store.write(&commit)?;
    if ctx.store.update_log(Some(ours), commit.oid, &actor, now)?.is_err() {
        return Ok(Step::Retry);
    }
    let loaded = Loaded { state: side.state, head: Some(commit.oid), head_clock: clock, behind: side.behind + 1 };
    replay::write_cache(&ctx.store, &loaded);
    report.rejected_in.extend(new_rejections(&before, &loaded, known));
    report.events_in += count_new(ctx, Some(ours), theirs)?;
    report.merge = Some(hex);
    match push(ctx, remote, commit.oid, Some(theirs), report)? {
        Step::Done => Ok(Step::Done),
        // Our merge stays in the local log; the next attempt fetches again and joins anew.
        Step::Retry => Ok(Step::Retry),
    }
}

/// Who acts in a fresh clone.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// `clutch.actor` was set, or this machine holds exactly one active agent's key.
    Chosen(String),
    /// This machine holds keys of several agents: pick one with `git config clutch.actor`.
    Several(Vec<String>),
    /// No key of any active agent is on this machine.
    Nobody,
}

/// After a clone: when `clutch.actor` is unset and this machine holds the key of exactly one
/// active agent, make that agent the actor.
pub fn pick_actor(ctx: &Ctx) -> Result<Actor> {
    if let Some(actor) = ctx.store.config_string("clutch.actor") {
        return Ok(Actor::Chosen(actor));
    }
    let loaded = ctx.load()?;
    let mut mine: Vec<String> = Vec::new();
    for agent in loaded.state.agents.values().filter(|a| a.status == crate::state::AgentStatus::Active) {
        let Ok(key) = PublicKey::parse_openssh(&agent.public_key) else { continue };
        if ctx.keys.holds(&agent.id, &key)? {
            mine.push(agent.id.clone());
        }
    }
    Ok(match mine.as_slice() {
        [] => Actor::Nobody,
        [one] => {
            ctx.store.config_set("clutch.actor", one, false)?;
            Actor::Chosen(one.clone())
        }
        _ => Actor::Several(mine),
    })
}
