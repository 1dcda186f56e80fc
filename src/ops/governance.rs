//! The CEO's decisions and budgets, and HR's proposals and evaluations.

use std::collections::BTreeMap;

use crate::event::{BudgetUpdated, DecisionRecorded, EvalReported, FiringProposal, HiringProposal, Payload, Role};
use crate::sign::PublicKey;
use crate::state::{ProposalStatus, State};
use crate::{Error, Result};

use super::{transact, Ctx, Draft, Written};

/// `decide --policy k=v … -m WHY`.
pub fn set_policy(ctx: &Ctx, actor: &str, changes: &BTreeMap<String, String>, reason: &str) -> Result<Written> {
    if changes.is_empty() {
        return Err(Error::usage("no policy to set").hint("git clutch decide --policy required_approvals=2 -m WHY"));
    }
    let (mut written, _) = transact(ctx, actor, |state| {
        state.governance.policy.with(changes).map_err(Error::user)?;
        Ok(vec![Draft::new(Payload::DecisionRecorded(DecisionRecorded {
            proposal: None,
            approve: None,
            policy: changes.clone(),
            reason: reason.to_string(),
        }))])
    })?;
    Ok(written.remove(0))
}

fn find_proposal<'s>(state: &'s State, id: &str) -> Result<&'s crate::state::Proposal> {
    let wanted = if id.starts_with("p-") { id.to_string() } else { format!("p-{id}") };
    state
        .governance
        .proposals
        .get(&wanted)
        .or_else(|| {
            let mut it = state.governance.proposals.range(wanted.clone()..).take_while(|(k, _)| k.starts_with(&wanted));
            match (it.next(), it.next()) {
                (Some((_, p)), None) if wanted.len() >= 4 => Some(p),
                _ => None,
            }
        })
        .ok_or_else(|| Error::user(format!("no proposal '{id}'")).hint("see them with: git clutch decision list"))
}

/// `decide PROPOSAL --approve|--reject -m WHY`.
pub fn decide(ctx: &Ctx, actor: &str, proposal: &str, approve: bool, reason: &str) -> Result<Written> {
    let (mut written, _) = transact(ctx, actor, |state| {
        let p = find_proposal(state, proposal)?;
        if p.status != ProposalStatus::Pending {
            return Err(Error::user(format!("proposal {} was already {}", p.id, format!("{:?}", p.status).to_lowercase())));
        }
        Ok(vec![Draft::new(Payload::DecisionRecorded(DecisionRecorded {
            proposal: Some(p.id.clone()),
            approve: Some(approve),
            policy: BTreeMap::new(),
            reason: reason.to_string(),
        }))])
    })?;
    Ok(written.remove(0))
}

pub fn propose_hire(ctx: &Ctx, actor: &str, agent: &str, role: Role, public_key: &str, reason: &str) -> Result<Written> {
    let key = PublicKey::parse_openssh(public_key)?;
    let (mut written, _) = transact(ctx, actor, |state| {
        if state.agents.contains_key(agent) {
            return Err(Error::user(format!("agent '{agent}' already exists")));
        }
        Ok(vec![Draft::new(Payload::HiringProposal(HiringProposal {
            agent: agent.to_string(),
            role,
            public_key: key.to_openssh(),
            reason: reason.to_string(),
        }))])
    })?;
    Ok(written.remove(0))
}

pub fn propose_fire(ctx: &Ctx, actor: &str, agent: &str, reason: &str) -> Result<Written> {
    let (mut written, _) = transact(ctx, actor, |state| {
        state.active_agent(agent).ok_or_else(|| Error::user(format!("'{agent}' is not an active agent")))?;
        Ok(vec![Draft::new(Payload::FiringProposal(FiringProposal { agent: agent.to_string(), reason: reason.to_string() }))])
    })?;
    Ok(written.remove(0))
}

pub fn eval(
    ctx: &Ctx,
    actor: &str,
    agent: &str,
    window: &str,
    scorecard: BTreeMap<String, f64>,
    summary: Option<String>,
) -> Result<Written> {
    let (mut written, _) = transact(ctx, actor, |_| {
        Ok(vec![Draft::new(Payload::EvalReported(EvalReported {
            agent: agent.to_string(),
            window: window.to_string(),
            scorecard: scorecard.clone(),
            summary: summary.clone(),
        }))])
    })?;
    Ok(written.remove(0))
}

/// Resolve a scope the user typed (`task:t-3f9a` → `task:t-3f9a2c1`) against the state.
pub fn resolve_scope(state: &State, scope: &str) -> Result<String> {
    let resolved = match scope.split_once(':') {
        Some(("task", id)) => format!("task:{}", state.find_task(id).map_err(Error::user)?.id),
        _ => scope.to_string(),
    };
    crate::state::gates_check_scope(state, &resolved)
        .map_err(|why| Error::user(why).hint("scopes: org, project:NAME, agent:ID, task:ID"))?;
    Ok(resolved)
}

pub fn set_budget(ctx: &Ctx, actor: &str, scope: &str, usd_micros: Option<u64>, tokens: Option<u64>) -> Result<Written> {
    let (mut written, _) = transact(ctx, actor, |state| {
        let scope = resolve_scope(state, scope)?;
        Ok(vec![Draft::new(Payload::BudgetUpdated(BudgetUpdated { scope, usd_micros, tokens }))])
    })?;
    Ok(written.remove(0))
}

/// What is left of one budget.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Remaining {
    pub scope: String,
    pub limit_usd_micros: Option<u64>,
    pub limit_tokens: Option<u64>,
    pub spent_usd_micros: u64,
    pub spent_tokens: u64,
    /// `None` when there is no limit.
    pub remaining_usd_micros: Option<i64>,
    pub remaining_tokens: Option<i64>,
    pub exhausted: bool,
}

/// Spend and limit of one scope. Tokens count input plus output.
pub fn remaining(state: &State, scope: &str) -> Remaining {
    let spend = match scope.split_once(':') {
        Some(("project", name)) => state.projects.get(name).map(|p| p.spend.clone()),
        Some(("agent", id)) => state.agents.get(id).map(|a| a.spend.clone()),
        Some(("task", id)) => state.tasks.get(id).map(|t| t.spend.clone()),
        _ => Some(state.spend.clone()),
    }
    .unwrap_or_default();
    let budget = state.governance.budgets.get(scope);
    let limit_usd = budget.and_then(|b| b.usd_micros);
    let limit_tokens = budget.and_then(|b| b.tokens);
    let spent_tokens = spend.input_tokens + spend.output_tokens;
    let remaining_usd = limit_usd.map(|l| l as i64 - spend.usd_micros as i64);
    let remaining_tokens = limit_tokens.map(|l| l as i64 - spent_tokens as i64);
    Remaining {
        scope: scope.to_string(),
        limit_usd_micros: limit_usd,
        limit_tokens,
        spent_usd_micros: spend.usd_micros,
        spent_tokens,
        remaining_usd_micros: remaining_usd,
        remaining_tokens,
        exhausted: remaining_usd.is_some_and(|r| r <= 0) || remaining_tokens.is_some_and(|r| r <= 0),
    }
}

/// Every budget that applies to work by `agent` on `task`: org, the task's project, the
/// agent, the task. A runtime may start only when none is exhausted.
pub fn applicable(state: &State, agent: &str, task: Option<&str>) -> Vec<Remaining> {
    let mut scopes = vec!["org".to_string(), format!("agent:{agent}")];
    if let Some(task) = task.and_then(|t| state.tasks.get(t)) {
        if let Some(project) = &task.project {
            scopes.push(format!("project:{project}"));
        }
        scopes.push(format!("task:{}", task.id));
    }
    scopes.into_iter().filter(|s| state.governance.budgets.contains_key(s)).map(|s| remaining(state, &s)).collect()
}
