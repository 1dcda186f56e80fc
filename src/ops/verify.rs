//! `verify`: replay the whole log from its root, trusting nothing, and report every refusal.

use crate::state::Rejection;
use crate::store::RawEvent;
use crate::{Error, Result};

use super::{replay, Ctx};

#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub head: Option<String>,
    pub org: Option<String>,
    /// Events in the log.
    pub events: u64,
    pub valid: u64,
    /// Events refused in the log's order that were invalid where they were made too: forged,
    /// corrupt, or breaking a gate. Any of these makes `verify` fail.
    pub rejected: Vec<Rejection>,
    /// Events valid where they were made but overturned when concurrent histories were joined
    /// (the losing one of two claims of a task). They are never applied, and are not errors.
    pub superseded: Vec<Rejection>,
}

pub fn verify(ctx: &Ctx) -> Result<Report> {
    let loaded = replay::load_cold(&ctx.store)?;
    let state = &loaded.state;
    let mut rejected = Vec::new();
    let mut superseded = Vec::new();
    let commits: Vec<crate::store::ObjectId> =
        state.rejected.iter().map(|r| crate::store::ObjectId::from_hex(r.commit.as_bytes()).expect("a rejection names a commit")).collect();
    let verdicts = replay::refused_on_own_histories(&ctx.store, &commits, state.org.as_ref().map(|o| o.id.as_str()), None)?;
    for (rejection, verdict) in state.rejected.iter().zip(verdicts) {
        match verdict {
            Some(_) => rejected.push(rejection.clone()),
            None => superseded.push(rejection.clone()),
        }
    }
    let report = Report {
        head: loaded.head.map(|h| h.to_string()),
        org: state.org.as_ref().map(|o| o.id.clone()),
        events: state.events + state.rejected.len() as u64,
        valid: state.events,
        rejected,
        superseded,
    };
    if let Some(org) = &state.org {
        if let Some(pinned) = ctx.store.config_string("clutch.orgid") {
            if pinned != org.id {
                return Err(Error::user(format!("refs/clutch/log starts at {}, but this repository belongs to org {pinned}", org.id)));
            }
        }
    }
    Ok(report)
}

/// Every commit of the log in replay order, for `git clutch log`.
pub fn ordered(ctx: &Ctx) -> Result<Vec<RawEvent>> {
    let Some(head) = ctx.store.head()? else { return Ok(Vec::new()) };
    let (mut chain, _) = ctx.store.first_parent_chain(head, None)?;
    chain.reverse();
    let mut out = Vec::with_capacity(chain.len());
    for oid in chain {
        let raw = ctx.store.read_event(oid)?;
        if raw.parents.len() > 1 {
            let mut side: Vec<RawEvent> = Vec::new();
            for oid in ctx.store.merged_in(raw.parents[0], &raw.parents[1..])? {
                side.push(ctx.store.read_event(oid)?);
            }
            out.extend(replay::topo_order(side));
        }
        out.push(raw);
    }
    Ok(out)
}
