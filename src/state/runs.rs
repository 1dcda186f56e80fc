//! The reducer for agent definitions and runs.
//!
//! The budget gate lives here: RUN_STARTED is refused when any budget that covers the run
//! (org, project, agent, task) is spent, so a run that was refused at write time is refused on
//! replay too, and a forged RUN_STARTED past a spent budget is reported by `verify`.

use super::apply::{allow, new_id, task_of, Applied, Verified, WORKERS};
use super::{AgentStatus, Run, RuntimeDef, State};
use crate::event::{Payload, Role, RunPurpose};

/// A setting's name: an id (`timeout_s`), or `env.` and an environment variable's name
/// (`env.OPENAI_API_KEY`), which becomes a variable of the agent's process.
pub fn valid_setting(name: &str) -> bool {
    match name.strip_prefix("env.") {
        Some(var) => {
            var.len() <= 64
                && var.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => super::apply::check_id("setting", name).is_ok(),
    }
}

pub(super) fn apply(state: &mut State, v: &Verified<'_>, role: Role) -> Result<Applied, String> {
    let e = v.event;
    let mut applied = Applied::default();
    match &e.payload {
        Payload::AgentConfigured(p) => {
            allow(role, &[Role::Ceo], &e.actor, "configure agents")?;
            let agent = state.agents.get(&p.agent).ok_or_else(|| format!("no agent '{}'", p.agent))?;
            if agent.status != AgentStatus::Active {
                return Err(format!("agent '{}' is not active", p.agent));
            }
            super::apply::check_id("runtime name", &p.runtime)?;
            if let Some(bad) = p.settings.keys().find(|k| !valid_setting(k)) {
                return Err(format!("setting name '{bad}' is not valid: use lowercase letters, digits, '.', '_' or '-', or env.VARIABLE"));
            }
            state.agents.get_mut(&p.agent).expect("checked above").runtime =
                Some(RuntimeDef { runtime: p.runtime.clone(), settings: p.settings.clone() });
        }
        Payload::RunStarted(p) => {
            if p.agent != e.actor {
                return Err(format!("'{}' cannot start a run for '{}': an agent signs its own runs", e.actor, p.agent));
            }
            match p.purpose {
                RunPurpose::Work => {
                    allow(role, WORKERS, &e.actor, "work tasks")?;
                    let task = task_of(state, e)?;
                    if task.status.is_closed() {
                        return Err(format!("task {} is {}", task.id, task.status.as_str()));
                    }
                    if task.assignee.as_deref() != Some(e.actor.as_str()) {
                        return Err(format!("task {} is not assigned to {}", task.id, e.actor));
                    }
                }
                RunPurpose::Review => {
                    allow(role, &[Role::Ceo, Role::Senior], &e.actor, "review PRs")?;
                    let pr = p.pr.as_ref().ok_or("a review run names its PR")?;
                    state.governance.prs.get(pr).ok_or_else(|| format!("no PR '{pr}'"))?;
                }
            }
            if let Some(spent) = spent_budget(state, &e.actor, e.task.as_deref()) {
                return Err(format!("the budget of {spent} is spent: no run may start"));
            }
            let id = new_id("r-", v.commit, |id| state.runs.contains_key(id));
            state.runs.insert(
                id.clone(),
                Run {
                    id: id.clone(),
                    agent: p.agent.clone(),
                    runtime: p.runtime.clone(),
                    purpose: p.purpose,
                    task: e.task.clone(),
                    pr: p.pr.clone(),
                    started_at: e.at.clone(),
                    finished_at: None,
                    status: None,
                    summary: None,
                    commit: None,
                    spend: Default::default(),
                },
            );
            applied.created = Some(id);
        }
        Payload::RunFinished(p) => {
            let run = state.runs.get(&p.run).ok_or_else(|| format!("no run '{}'", p.run))?;
            if run.agent != e.actor {
                return Err(format!("run {} belongs to {}, not {}", run.id, run.agent, e.actor));
            }
            if run.status.is_some() {
                return Err(format!("run {} already finished", run.id));
            }
            let run = state.runs.get_mut(&p.run).expect("checked above");
            run.finished_at = Some(e.at.clone());
            run.status = Some(p.status);
            run.summary = Some(p.summary.clone());
            run.commit = p.commit.clone();
        }
        Payload::RunRefused(p) => {
            if p.agent != e.actor {
                return Err(format!("'{}' cannot record a refusal for '{}'", e.actor, p.agent));
            }
            state.refused_runs.push((p.agent.clone(), p.reason.clone(), v.commit.to_string()));
        }
        other => unreachable!("{} is not a run event", other.event_type()),
    }
    Ok(applied)
}

/// The first budget covering work by `agent` on `task` that is spent, if any.
pub fn spent_budget(state: &State, agent: &str, task: Option<&str>) -> Option<String> {
    let task = task.and_then(|t| state.tasks.get(t));
    let mut scopes: Vec<(String, Option<&super::Spend>)> =
        vec![("org".into(), Some(&state.spend)), (format!("agent:{agent}"), state.agents.get(agent).map(|a| &a.spend))];
    if let Some(task) = task {
        if let Some(project) = &task.project {
            scopes.push((format!("project:{project}"), state.projects.get(project).map(|p| &p.spend)));
        }
        scopes.push((format!("task:{}", task.id), Some(&task.spend)));
    }
    scopes.into_iter().find_map(|(scope, spend)| {
        let budget = state.governance.budgets.get(&scope)?;
        let spend = spend?;
        let over_usd = budget.usd_micros.is_some_and(|limit| spend.usd_micros >= limit);
        let over_tokens = budget.tokens.is_some_and(|limit| spend.input_tokens + spend.output_tokens >= limit);
        (over_usd || over_tokens).then_some(scope)
    })
}
