//! The checks a remote enforces on every push (`hooks/pre-receive`), also run by the client
//! before anything leaves (`hooks/pre-push`).
//!
//! - `refs/clutch/log` only fast-forwards and is never deleted;
//! - every event a push adds passes replay (signature, key, schema, role, gates);
//! - the log keeps the genesis this repository is pinned to;
//! - a protected branch only fast-forwards, and only to a commit that a MERGE_APPROVED of a PR
//!   into that branch names as its result.

use crate::state::State;
use crate::store::{ObjectId, Store, LOG_REF};
use crate::Result;

use super::replay::{self, Loaded};

/// One ref update of a push.
#[derive(Debug, Clone)]
pub struct Update {
    pub name: String,
    pub old: Option<ObjectId>,
    pub new: Option<ObjectId>,
}

impl Update {
    /// Parse `<old> <new> <ref>` (pre-receive) with all-zero ids meaning "none".
    pub fn parse(old: &str, new: &str, name: &str) -> Option<Update> {
        let id = |hex: &str| -> Option<Option<ObjectId>> {
            let oid = ObjectId::from_hex(hex.as_bytes()).ok()?;
            Some(if oid.is_null() { None } else { Some(oid) })
        };
        Some(Update { name: name.to_string(), old: id(old)?, new: id(new)? })
    }
}

/// Every reason to refuse the push; empty when it may go through.
///
/// `objects` sees the pushed objects; `current_log` is the log the receiving side has now;
/// `pin` is its org id, if it has one.
pub fn check(objects: &Store, current_log: Option<ObjectId>, pin: Option<&str>, updates: &[Update]) -> Result<Vec<String>> {
    Ok(check_log(objects, current_log, pin, updates)?.0)
}

/// [`check`], also returning the genesis (org id) of the log the push leaves, when it moves it.
pub fn check_log(
    objects: &Store,
    current_log: Option<ObjectId>,
    pin: Option<&str>,
    updates: &[Update],
) -> Result<(Vec<String>, Option<String>)> {
    let mut refusals = Vec::new();
    let mut genesis = None;
    let mut final_log = current_log;
    let mut final_state: Option<State> = None;

    if let Some(update) = updates.iter().find(|u| u.name == LOG_REF) {
        match (update.old, update.new) {
            (_, None) => refusals.push(format!("deleting {LOG_REF} is refused: the org log is append-only")),
            (old, Some(new)) => {
                // An old value this side does not have (pre-push, after someone else pushed):
                // judge the whole log being pushed; the remote will say "fetch first".
                let old = old.filter(|o| objects.has(*o));
                if let Some(old) = old {
                    if objects.has(old) && !objects.is_ancestor(old, new)? {
                        refusals.push(format!("{LOG_REF} may only fast-forward: {new} does not contain {old} (the push rewrites history)"));
                        return Ok((refusals, genesis));
                    }
                }
                let before = match old {
                    Some(old) => state_at(objects, old)?,
                    None => Loaded::default(),
                };
                // Only the commits this push brings are judged. An event the server already
                // holds may be overturned by a merge (of two conflicting claims, replay order
                // decides which stands); that is the log working, not a forgery.
                let incoming: std::collections::HashSet<String> = match old {
                    Some(old) => objects.merged_in(old, &[new])?,
                    None => objects.merged_in_all(new)?,
                }
                .into_iter()
                .map(|oid| oid.to_string())
                .collect();
                let after = replay::advance(objects, Some(before.clone()), new)?;
                // Refused only in the joined order, valid where it was made: superseded by a
                // concurrent event, which is how conflicts resolve. Anything else is refused.
                // Each history is replayed on from the last (from the server's state first), so
                // a push of many forged events costs one replay, not one per event.
                let judged: Vec<&crate::state::Rejection> = after.state.rejected.iter().filter(|r| incoming.contains(&r.commit)).collect();
                let commits: Vec<ObjectId> =
                    judged.iter().map(|r| ObjectId::from_hex(r.commit.as_bytes()).expect("a rejection names a commit")).collect();
                let expected = pin.map(str::to_string).or_else(|| after.state.org.as_ref().map(|o| o.id.clone()));
                let verdicts = replay::refused_on_own_histories(objects, &commits, expected.as_deref(), Some(before))?;
                for (rejection, verdict) in judged.iter().zip(verdicts) {
                    if let Some(reason) = verdict {
                        refusals.push(format!("{LOG_REF} carries an invalid event {}: {reason}", rejection.commit));
                    }
                }
                genesis = after.state.org.as_ref().map(|o| o.id.clone());
                match (&after.state.org, pin) {
                    (None, _) => refusals.push(format!("{LOG_REF} does not start with a valid ORG_CREATED")),
                    (Some(org), Some(pin)) if org.id != pin => {
                        refusals.push(format!("{LOG_REF} belongs to org {} but this repository holds org {pin}", org.id))
                    }
                    _ => {}
                }
                final_log = Some(new);
                if refusals.is_empty() {
                    // Keep the server's cache warm: the next push replays only what it adds.
                    replay::write_cache(objects, &after);
                }
                final_state = Some(after.state);
            }
        }
    }

    for update in updates.iter().filter(|u| u.name.starts_with("refs/clutch/") && u.name != LOG_REF) {
        match (update.old, update.new) {
            (Some(_), None) => refusals.push(format!("deleting {} is refused", update.name)),
            (Some(old), Some(new)) if objects.has(old) && !objects.is_ancestor(old, new)? => {
                refusals.push(format!("{} may only fast-forward (the push rewrites history)", update.name))
            }
            _ => {}
        }
    }

    let branches: Vec<&Update> = updates.iter().filter(|u| u.name.starts_with("refs/heads/")).collect();
    if branches.is_empty() {
        return Ok((refusals, genesis));
    }
    let state = match (final_state, final_log) {
        (Some(state), _) => state,
        (None, Some(log)) => state_at(objects, log)?.state,
        (None, None) => return Ok((refusals, genesis)),
    };
    for update in branches {
        let branch = update.name.trim_start_matches("refs/heads/");
        if !state.governance.policy.protected_branches.iter().any(|b| b == branch) {
            continue;
        }
        match (update.old, update.new) {
            (_, None) => refusals.push(format!("deleting protected branch {branch} is refused")),
            // Creating the branch is a project's first push, allowed while the log has merged
            // nothing into it. Once it has, the branch may only be created at a merge result
            // the log approved: a server that never had it gets no unreviewed history.
            (None, Some(new)) => {
                let hex = new.to_string();
                let parents = objects.parents(new).unwrap_or_default();
                let mut merged_into = state.governance.prs.values().filter(|pr| pr.base == branch && pr.result.is_some()).peekable();
                let any_merged = merged_into.peek().is_some();
                // As for a move: the result itself, and only if it is what the merge made (the
                // PR's head, or a merge whose second parent is that head).
                let approved = merged_into.any(|pr| {
                    let head = ObjectId::from_hex(pr.head.as_bytes()).ok();
                    pr.result.as_deref() == Some(hex.as_str()) && (Some(new) == head || (parents.len() == 2 && Some(parents[1]) == head))
                });
                if any_merged && !approved {
                    refusals.push(format!(
                        "protected branch {branch} may only be created at a merge the log approved: no MERGE_APPROVED names {new}"
                    ));
                }
            }
            (Some(old), Some(new)) => {
                let hex = new.to_string();
                let parents = objects.parents(new).unwrap_or_default();
                // The approved result itself, and only if it is what the merge made: the PR's
                // head (fast-forward) or a merge of exactly the branch's tip and that head. A
                // result naming any other commit does not move a protected branch.
                let approved = state.governance.prs.values().any(|pr| {
                    let head = ObjectId::from_hex(pr.head.as_bytes()).ok();
                    pr.base == branch
                        && pr.result.as_deref() == Some(hex.as_str())
                        && (Some(new) == head || (parents.len() == 2 && parents[0] == old && Some(parents[1]) == head))
                });
                if !approved {
                    refusals.push(format!(
                        "protected branch {branch} may only move to a merge the log approved: no MERGE_APPROVED names {new}"
                    ));
                } else if objects.has(old) && !objects.is_ancestor(old, new)? {
                    refusals.push(format!("protected branch {branch} may only fast-forward"));
                }
            }
        }
    }
    Ok((refusals, genesis))
}

/// The state at `head`, from the cache when it is at or before `head`.
fn state_at(store: &Store, head: ObjectId) -> Result<Loaded> {
    let cached = replay::load_cached(store);
    match cached {
        Some(c) if c.head == Some(head) => Ok(c),
        Some(c) if c.head.is_some_and(|h| store.is_ancestor(h, head).unwrap_or(false)) => replay::advance(store, Some(c), head),
        _ => replay::advance(store, None, head),
    }
}
