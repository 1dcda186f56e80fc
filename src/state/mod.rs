//! State is a pure fold of the log: `apply(state, event)` for every event in replay order.
//!
//! Nothing here touches git, the clock or the file system. [`apply`] is the only way in, and
//! it either applies an event completely or refuses it with a reason and changes nothing; the
//! gates live in it, so the same rule decides when a command writes and when a clone replays.

pub mod apply;
mod gates;
pub mod governance;
mod graph;
mod runs;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use apply::{apply, Applied, Verified};
pub use gates::check_scope as gates_check_scope;
pub use governance::{evaluate_gate, Governance, Policy, Pr, PrStatus, Proposal, ProposalKind, ProposalStatus, TestsBy};
pub use graph::would_cycle;
pub use runs::{spent_budget, valid_setting};

use crate::event::{Cost, Role, TaskStatus};

/// Everything the log says, as of one head.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub org: Option<Org>,
    pub agents: BTreeMap<String, Agent>,
    pub projects: BTreeMap<String, Project>,
    pub tasks: BTreeMap<String, Task>,
    pub artifacts: Vec<Artifact>,
    /// Events applied.
    pub events: u64,
    /// The highest Lamport clock applied.
    pub clock: u64,
    /// Spend of the whole org.
    pub spend: Spend,
    /// PRs, reviews, test runs, policy, proposals, decisions, budgets.
    pub governance: Governance,
    /// Agent runs, by id.
    pub runs: BTreeMap<String, Run>,
    /// Runs refused before they started: (agent, reason, event).
    pub refused_runs: Vec<(String, String, String)>,
    /// Events that were refused, in replay order.
    pub rejected: Vec<Rejection>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    /// The genesis commit id.
    pub id: String,
    pub name: String,
    pub founder: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    Active,
    Fired,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub id: String,
    pub role: Role,
    /// `ssh-ed25519 AAAA…`
    pub public_key: String,
    pub status: AgentStatus,
    /// When the CEO's decision fired the agent; its signatures are good only before then.
    pub fired_at: Option<String>,
    pub joined_at: String,
    /// The commit that registered the agent.
    pub joined_by: String,
    pub spend: Spend,
    /// Events this agent signed that were applied.
    pub events: u64,
    /// How the agent runs, when it is an automated agent.
    pub runtime: Option<RuntimeDef>,
}

/// An agent's runtime and its settings (AGENT_CONFIGURED).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeDef {
    pub runtime: String,
    pub settings: BTreeMap<String, String>,
}

/// One agent run, from RUN_STARTED to RUN_FINISHED.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    pub agent: String,
    pub runtime: String,
    pub purpose: crate::event::RunPurpose,
    pub task: Option<String>,
    pub pr: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: Option<crate::event::RunStatus>,
    pub summary: Option<String>,
    pub commit: Option<String>,
    pub spend: Spend,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub name: String,
    pub description: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub spend: Spend,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    /// Position in replay order among applied events: orders tasks created in one second.
    pub seq: u64,
    pub title: String,
    pub description: Option<String>,
    pub project: Option<String>,
    /// Tasks that must be done first.
    pub after: Vec<String>,
    pub status: TaskStatus,
    pub assignee: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    /// When it was first assigned or claimed.
    pub assigned_at: Option<String>,
    pub done_at: Option<String>,
    /// The commit that created the task.
    pub event: String,
    pub spend: Spend,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub task: String,
    pub path: String,
    pub kind: String,
    pub blob: String,
    pub size: u64,
    pub by: String,
    pub at: String,
    /// The commit that recorded it.
    pub event: String,
}

/// An event replay refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub commit: String,
    pub reason: String,
}

/// Summed cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub usd_micros: u64,
    pub wall_ms: u64,
}

impl Spend {
    pub fn add(&mut self, cost: &Cost) {
        self.input_tokens += cost.input_tokens;
        self.output_tokens += cost.output_tokens;
        self.cache_read_tokens += cost.cache_read_tokens;
        self.cache_write_tokens += cost.cache_write_tokens;
        self.usd_micros += cost.usd_micros;
        self.wall_ms += cost.wall_ms;
    }
}

impl State {
    /// An agent that is on the roster and not fired.
    pub fn active_agent(&self, id: &str) -> Option<&Agent> {
        self.agents.get(id).filter(|a| a.status == AgentStatus::Active)
    }

    /// A task by id, or by a prefix that names exactly one task.
    pub fn find_task(&self, text: &str) -> Result<&Task, String> {
        let wanted = if text.starts_with("t-") { text.to_string() } else { format!("t-{text}") };
        if let Some(task) = self.tasks.get(&wanted) {
            return Ok(task);
        }
        let mut matches = self.tasks.range(wanted.clone()..).take_while(|(id, _)| id.starts_with(&wanted));
        match (matches.next(), matches.next()) {
            (Some((_, task)), None) if wanted.len() >= 4 => Ok(task),
            (Some(_), Some(_)) => Err(format!("task id '{text}' is ambiguous: give more of it")),
            _ => Err(format!("no task '{text}'")),
        }
    }

    /// Whether every dependency of `task` is done.
    pub fn dependencies_done(&self, task: &Task) -> bool {
        task.after.iter().all(|dep| self.tasks.get(dep).is_some_and(|d| d.status == TaskStatus::Done))
    }

    /// Not started, not closed, and every dependency done.
    pub fn is_ready(&self, task: &Task) -> bool {
        matches!(task.status, TaskStatus::Open | TaskStatus::Assigned) && self.dependencies_done(task)
    }

    pub fn artifacts_of<'a>(&'a self, task: &'a str) -> impl Iterator<Item = &'a Artifact> + 'a {
        self.artifacts.iter().filter(move |a| a.task == task)
    }
}

#[cfg(test)]
mod tests;
