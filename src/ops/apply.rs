//! `git clutch apply org.toml`: make the log match a declared org — agents (role, key,
//! runtime and settings), projects, policy and budgets — by recording the events that differ.
//!
//! The whole file is checked against the state before anything is written: a change the file
//! cannot make by itself (a role change is HR's and the CEO's decision; a key change, a fired
//! agent) is reported and nothing is applied.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::event::Role;
use crate::sign::PublicKey;
use crate::state::State;
use crate::{Error, Result};

use super::{governance, org, Ctx};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgFile {
    #[serde(default)]
    pub agents: BTreeMap<String, AgentDecl>,
    #[serde(default)]
    pub projects: BTreeMap<String, ProjectDecl>,
    /// Policy knobs, as `decide --policy` names them.
    #[serde(default)]
    pub policy: BTreeMap<String, toml::Value>,
    /// Budgets by scope (`org`, `project:NAME`, `agent:ID`, `task:ID`).
    #[serde(default)]
    pub budgets: BTreeMap<String, BudgetDecl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentDecl {
    pub role: Role,
    /// `ssh-ed25519 AAAA…`; without it a key pair is made and kept on this machine.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub runtime: Option<String>,
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectDecl {
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetDecl {
    #[serde(default)]
    pub usd: Option<f64>,
    #[serde(default)]
    pub tokens: Option<u64>,
}

/// One change `apply` makes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    AddAgent { id: String, role: Role },
    ConfigureAgent { id: String, runtime: String, settings: BTreeMap<String, String> },
    AddProject { name: String, description: Option<String> },
    SetPolicy { knobs: BTreeMap<String, String> },
    SetBudget { scope: String, usd_micros: Option<u64>, tokens: Option<u64> },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::AddAgent { id, role } => write!(f, "+ agent {id} ({role})"),
            Change::ConfigureAgent { id, runtime, settings } => {
                let settings: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "~ agent {id} runs on {runtime} {}", settings.join(" "))
            }
            Change::AddProject { name, .. } => write!(f, "+ project {name}"),
            Change::SetPolicy { knobs } => {
                let knobs: Vec<String> = knobs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "~ policy {}", knobs.join(" "))
            }
            Change::SetBudget { scope, usd_micros, tokens } => {
                let usd = usd_micros.map(|m| format!(" ${:.2}", m as f64 / 1e6)).unwrap_or_default();
                let tokens = tokens.map(|t| format!(" {t} tokens")).unwrap_or_default();
                write!(f, "~ budget {scope}{usd}{tokens}")
            }
        }
    }
}

pub fn parse(text: &str) -> Result<OrgFile> {
    toml::from_str(text).map_err(|err| {
        Error::user(format!("the org file is not valid: {}", err.message())).hint(err.to_string().lines().next().unwrap_or("").to_string())
    })
}

/// The changes that make `state` match `file` when `actor` applies it, or every reason it
/// cannot (checked before anything is written, so a refusal leaves the log as it was).
pub fn plan(state: &State, file: &OrgFile, actor: &str) -> Result<Vec<Change>> {
    let changes = changes(state, file)?;
    let role = state.active_agent(actor).map(|a| a.role);
    let lead = matches!(role, Some(Role::Ceo | Role::Senior));
    let ceo = role == Some(Role::Ceo);
    let refused: Vec<String> =
        changes.iter().filter(|c| if matches!(c, Change::AddProject { .. }) { !lead } else { !ceo }).map(|c| c.to_string()).collect();
    if !refused.is_empty() {
        return Err(Error::user(format!(
            "'{actor}' may not make these changes (agents, policy and budgets are the CEO's): {}",
            refused.join("; ")
        ))
        .hint("nothing was changed; apply the file as the CEO (--as)"));
    }
    Ok(changes)
}

fn changes(state: &State, file: &OrgFile) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    let mut problems = Vec::new();
    for (id, decl) in &file.agents {
        if let Some(key) = &decl.key {
            if let Err(err) = PublicKey::parse_openssh(key) {
                problems.push(format!("agent {id}: {}", err.message));
            }
        }
        if let Some(runtime) = &decl.runtime {
            if crate::runtime::find(runtime).is_none() {
                problems.push(format!("agent {id}: no runtime named '{runtime}' (known: {})", crate::runtime::NAMES.join(", ")));
            }
        }
        match state.agents.get(id) {
            None => changes.push(Change::AddAgent { id: id.clone(), role: decl.role }),
            Some(agent) => {
                if agent.status != crate::state::AgentStatus::Active {
                    problems.push(format!("agent {id} was fired: remove it from the file"));
                }
                if agent.role != decl.role {
                    problems.push(format!(
                        "agent {id} is {} in the log, {} in the file: roles change through HR (git clutch hr propose-…) and the CEO's decision",
                        agent.role, decl.role
                    ));
                }
                if let Some(key) = &decl.key {
                    if PublicKey::parse_openssh(key).map(|k| k.to_openssh()).ok().as_deref() != Some(agent.public_key.as_str()) {
                        problems.push(format!("agent {id} has another key in the log: keys are not replaced by apply"));
                    }
                }
            }
        }
        if let Some(runtime) = &decl.runtime {
            let current = state.agents.get(id).and_then(|a| a.runtime.as_ref());
            if current.is_none_or(|c| c.runtime != *runtime || c.settings != decl.settings) {
                // A definition that changes is checked as `agent config` would check it (one
                // already in the log stands): a file with one that would be refused applies
                // nothing.
                if let Err(err) = super::org::check_configuration(id, Some(decl.role), runtime, &decl.settings) {
                    problems.push(format!("agent {id}: {}", err.message));
                }
                changes.push(Change::ConfigureAgent { id: id.clone(), runtime: runtime.clone(), settings: decl.settings.clone() });
            }
        } else if !decl.settings.is_empty() {
            problems.push(format!("agent {id}: settings without a runtime"));
        }
    }
    for (name, decl) in &file.projects {
        if !state.projects.contains_key(name) {
            changes.push(Change::AddProject { name: name.clone(), description: decl.description.clone() });
        }
    }
    let current: BTreeMap<&str, String> = state.governance.policy.knobs().into_iter().collect();
    let mut knobs = BTreeMap::new();
    for (name, value) in &file.policy {
        let Some(value) = scalar(value) else {
            problems.push(format!("policy {name}: give a string, number, boolean or list of strings"));
            continue;
        };
        if current.get(name.as_str()) != Some(&value) {
            knobs.insert(name.clone(), value);
        }
    }
    if !knobs.is_empty() {
        if let Err(why) = state.governance.policy.with(&knobs) {
            problems.push(format!("policy: {why}"));
        }
        changes.push(Change::SetPolicy { knobs });
    }
    for (scope, decl) in &file.budgets {
        let usd_micros = match decl.usd {
            Some(usd) if !usd.is_finite() || usd < 0.0 => {
                problems.push(format!("budget {scope}: {usd} is not a non-negative amount"));
                None
            }
            other => other.map(|usd| (usd * 1e6).round() as u64),
        };
        if usd_micros.is_none() && decl.tokens.is_none() {
            problems.push(format!("budget {scope}: give usd and/or tokens"));
            continue;
        }
        let now = state.governance.budgets.get(scope);
        let same =
            now.is_some_and(|b| (usd_micros.is_none() || b.usd_micros == usd_micros) && (decl.tokens.is_none() || b.tokens == decl.tokens));
        let known_scope = crate::state::gates_check_scope(state, scope).is_ok()
            || scope.strip_prefix("project:").is_some_and(|p| file.projects.contains_key(p))
            || scope.strip_prefix("agent:").is_some_and(|a| file.agents.contains_key(a));
        if !known_scope {
            problems.push(format!("budget {scope}: names nothing in the org or the file"));
        } else if !same {
            changes.push(Change::SetBudget { scope: scope.clone(), usd_micros, tokens: decl.tokens });
        }
    }
    if problems.is_empty() {
        Ok(changes)
    } else {
        Err(Error::user(format!("the org file cannot be applied: {}", problems.join("; "))).hint("nothing was changed"))
    }
}

/// A policy value as `decide --policy` spells it.
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => items.iter().map(|i| i.as_str().map(str::to_string)).collect::<Option<Vec<_>>>().map(|v| v.join(",")),
        _ => None,
    }
}

/// Record the planned changes, in order, as `actor` (the CEO for most of them).
pub fn apply(ctx: &Ctx, actor: &str, file: &OrgFile, changes: &[Change]) -> Result<()> {
    for change in changes {
        match change {
            Change::AddAgent { id, role } => {
                let key = file.agents.get(id).and_then(|a| a.key.clone());
                org::agent_add(ctx, actor, id, *role, key.as_deref())?;
            }
            Change::ConfigureAgent { id, runtime, settings } => {
                org::configure(ctx, actor, id, runtime, settings)?;
            }
            Change::AddProject { name, description } => {
                org::project_new(ctx, actor, name, description.as_deref())?;
            }
            Change::SetPolicy { knobs } => {
                governance::set_policy(ctx, actor, knobs, "org.toml applied")?;
            }
            Change::SetBudget { scope, usd_micros, tokens } => {
                governance::set_budget(ctx, actor, scope, *usd_micros, *tokens)?;
            }
        }
    }
    Ok(())
}
