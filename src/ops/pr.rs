//! PRs: open, update, review, merge.
//!
//! `merge` evaluates the gate against the newest state inside the transaction: when it holds,
//! the merge commit is built and signed first, MERGE_APPROVED names it, and only then does the
//! base branch move (by compare-and-swap). When it does not hold, MERGE_BLOCKED records every
//! unmet condition and the branch stays where it is.

use crate::event::{Cost, Gate, MergeApproved, MergeBlocked, Payload, PrOpened, PrUpdated, ReviewCommented, Role, Verdict};
use crate::sign::PublicKey;
use crate::state::{evaluate_gate, governance::MergeMode, Pr, State};
use crate::store::{ObjectId, TreeMerge};
use crate::{Error, Result};

use super::{transact, Ctx, Draft, Written};

fn find<'s>(state: &'s State, id: &str) -> Result<&'s Pr> {
    let wanted = if id.starts_with("pr-") { id.to_string() } else { format!("pr-{id}") };
    if let Some(pr) = state.governance.prs.get(&wanted) {
        return Ok(pr);
    }
    let mut matches = state.governance.prs.range(wanted.clone()..).take_while(|(k, _)| k.starts_with(&wanted));
    match (matches.next(), matches.next()) {
        (Some((_, pr)), None) if wanted.len() >= 5 => Ok(pr),
        (Some(_), Some(_)) => Err(Error::user(format!("PR id '{id}' is ambiguous: give more of it"))),
        _ => Err(Error::user(format!("no PR '{id}'")).hint("see the PRs with: git clutch pr list")),
    }
}

pub fn find_pr<'s>(state: &'s State, id: &str) -> Result<&'s Pr> {
    find(state, id)
}

fn branch_head(ctx: &Ctx, branch: &str) -> Result<ObjectId> {
    ctx.store
        .branch(branch)?
        .ok_or_else(|| Error::user(format!("no branch '{branch}' in this repository")).hint("push or create the branch first"))
}

pub struct Open<'a> {
    pub task: &'a str,
    pub head_branch: Option<&'a str>,
    pub base: &'a str,
    pub title: Option<&'a str>,
    pub cost: Cost,
}

pub fn open(ctx: &Ctx, actor: &str, open: &Open<'_>) -> Result<Written> {
    let head_branch = match open.head_branch {
        Some(branch) => branch.to_string(),
        None => ctx.store.current_branch().ok_or_else(|| Error::user("HEAD is not on a branch").hint("pass --head BRANCH"))?,
    };
    if head_branch == open.base {
        return Err(Error::user(format!("the PR's head branch and base are both '{}'", open.base))
            .hint("work on a task branch and pass --head BRANCH"));
    }
    let head = branch_head(ctx, &head_branch)?;
    branch_head(ctx, open.base)?;
    let (mut written, _) = transact(ctx, actor, |state| {
        let task = state.find_task(open.task).map_err(Error::user)?;
        if let Some(pr) = state
            .governance
            .prs
            .values()
            .find(|p| p.task == task.id && p.head_branch == head_branch && p.status == crate::state::PrStatus::Open)
        {
            return Err(Error::user(format!("{} is already open for {} on {head_branch}", pr.id, task.id))
                .hint(format!("record a new head with: git clutch pr update {}", pr.id)));
        }
        let title = open.title.map(str::to_string).unwrap_or_else(|| task.title.clone());
        let mut draft = Draft::new(Payload::PrOpened(PrOpened {
            title,
            base: open.base.to_string(),
            head_branch: head_branch.clone(),
            head: head.to_string(),
        }))
        .task(task);
        draft.refs = vec![head.to_string()];
        draft.cost = open.cost.clone();
        Ok(vec![draft])
    })?;
    Ok(written.remove(0))
}

/// Record the head branch's new commit. `None` when it has not moved.
pub fn update(ctx: &Ctx, actor: &str, id: &str, cost: Cost) -> Result<Option<Written>> {
    let (written, _) = transact(ctx, actor, |state| {
        let pr = find(state, id)?;
        let head = branch_head(ctx, &pr.head_branch)?;
        if pr.head == head.to_string().as_str() {
            return Ok(Vec::new());
        }
        let task = state.tasks.get(&pr.task).expect("a PR's task exists");
        let mut draft = Draft::new(Payload::PrUpdated(PrUpdated { pr: pr.id.clone(), head: head.to_string() })).task(task);
        draft.refs = vec![head.to_string()];
        draft.cost = cost.clone();
        Ok(vec![draft])
    })?;
    Ok(written.into_iter().next())
}

/// A review as recorded, and whether a Junior's verdict was turned into a comment.
#[derive(Debug)]
pub struct Reviewed {
    pub written: Written,
    pub downgraded: bool,
}

pub fn review(ctx: &Ctx, actor: &str, id: &str, verdict: Verdict, body: &str, cost: Cost) -> Result<Reviewed> {
    let mut downgraded = false;
    let (mut written, _) = transact(ctx, actor, |state| {
        let pr = find(state, id)?;
        let role = state.agents.get(actor).map(|a| a.role);
        let mut verdict = verdict;
        if verdict != Verdict::Comment && pr.author == actor {
            return Err(Error::user(format!("nobody approves or rejects their own PR ({actor} opened {})", pr.id))
                .hint("ask a senior to review it"));
        }
        let mut body = body.to_string();
        if verdict != Verdict::Comment && role == Some(Role::Junior) {
            if body.trim().is_empty() {
                body = format!(
                    "({} by a junior, recorded as a comment)",
                    if verdict == Verdict::Approve { "approval" } else { "request for changes" }
                );
            }
            verdict = Verdict::Comment;
            downgraded = true;
        }
        if body.trim().is_empty() && verdict != Verdict::Approve {
            return Err(Error::user("this review needs a message").hint("pass -m TEXT"));
        }
        let task = state.tasks.get(&pr.task).expect("a PR's task exists");
        let mut draft = Draft::new(Payload::ReviewCommented(ReviewCommented {
            pr: pr.id.clone(),
            head: pr.head.clone(),
            verdict,
            body: body.to_string(),
        }))
        .task(task);
        draft.cost = cost.clone();
        Ok(vec![draft])
    })?;
    Ok(Reviewed { written: written.remove(0), downgraded })
}

/// What `pr merge` did.
#[derive(Debug)]
pub enum Merged {
    /// MERGE_APPROVED recorded and the base branch moved to `result`.
    Approved { written: Written, result: ObjectId, base: String, worktree_updated: bool },
    /// MERGE_BLOCKED recorded; nothing moved.
    Blocked { written: Written, gate: Gate },
}

pub fn merge(ctx: &Ctx, actor: &str, id: &str) -> Result<Merged> {
    let now = ctx.env.now();
    let mut outcome: Option<(Option<ObjectId>, Gate, String, ObjectId)> = None;
    let (mut written, _) = transact(ctx, actor, |state| {
        let pr = find(state, id)?;
        let task = state.tasks.get(&pr.task).expect("a PR's task exists");
        let mut gate = evaluate_gate(state, pr, actor);
        let base_tip = branch_head(ctx, &pr.base)?;
        let head = ObjectId::from_hex(pr.head.as_bytes()).map_err(|_| Error::internal(format!("{} has a bad head", pr.id)))?;
        let mut result = None;
        if gate.unmet.is_empty() {
            if ctx.store.branch(&pr.head_branch)? != Some(head) {
                gate.unmet.push(format!(
                    "branch {} has moved past the PR's head {}: run `git clutch pr update {}`",
                    pr.head_branch,
                    &pr.head[..10],
                    pr.id
                ));
            } else if ctx.store.is_ancestor(head, base_tip)? {
                gate.unmet.push(format!("{} is already contained in {}", &pr.head[..10], pr.base));
            } else if state.governance.policy.merge_mode == MergeMode::Ff && ctx.store.is_ancestor(base_tip, head)? {
                result = Some(head);
            } else {
                match ctx.store.merge_trees(base_tip, head)? {
                    TreeMerge::Conflict(paths) => gate
                        .unmet
                        .push(format!("merge conflict in {}", if paths.is_empty() { "the trees".to_string() } else { paths.join(", ") })),
                    TreeMerge::Clean(tree) => {
                        let agent = state.agents.get(actor).ok_or_else(|| Error::user(format!("unknown agent '{actor}'")))?;
                        let key = ctx.keys.load(actor, &PublicKey::parse_openssh(&agent.public_key)?)?;
                        let message = format!(
                            "Merge {} ({}): {}\n\nClutch-PR: {}\nClutch-Task: {}\n",
                            pr.id, pr.head_branch, pr.title, pr.id, pr.task
                        );
                        let commit = ctx.store.prepare_merge(tree, &[base_tip, head], &message, actor, &key, now)?;
                        ctx.store.write(&commit)?;
                        result = Some(commit.oid);
                    }
                }
            }
        }
        outcome = Some((result, gate.clone(), pr.base.clone(), base_tip));
        let draft = match result {
            Some(result) => {
                let mut draft = Draft::new(Payload::MergeApproved(MergeApproved {
                    pr: pr.id.clone(),
                    head: pr.head.clone(),
                    gate,
                    result: result.to_string(),
                }))
                .task(task);
                draft.refs = vec![pr.head.clone(), result.to_string()];
                draft
            }
            None => Draft::new(Payload::MergeBlocked(MergeBlocked { pr: pr.id.clone(), head: pr.head.clone(), gate })).task(task),
        };
        Ok(vec![draft])
    })?;
    let written = written.remove(0);
    let (result, gate, base, base_tip) = outcome.expect("the transaction ran");
    let Some(result) = result else {
        return Ok(Merged::Blocked { written, gate });
    };
    // Whether the base is checked out here with nothing uncommitted: decided before the ref
    // moves, since afterwards the index no longer matches HEAD.
    let follow = ctx.store.checked_out_and_clean(&base)?;
    if let Err(_moved) = ctx.store.update_ref(&format!("refs/heads/{base}"), Some(base_tip), result, actor, now, "clutch: merge")? {
        return Err(Error::conflict(format!(
            "MERGE_APPROVED was recorded in {}, but {base} moved before it could be updated",
            written.commit
        ))
        .hint(format!("move it by hand after checking: git update-ref refs/heads/{base} {result}")));
    }
    let worktree_updated = follow && ctx.store.update_work_tree(base_tip, result)?;
    Ok(Merged::Approved { written, result, base, worktree_updated })
}
