//! The payload of every event type. Field names are part of the wire format: never rename
//! one; add optional fields instead. Each struct's doc comment becomes its schema's description.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What an agent is allowed to do (DESIGN §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Ceo,
    Hr,
    Senior,
    Junior,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ceo => "ceo",
            Role::Hr => "hr",
            Role::Senior => "senior",
            Role::Junior => "junior",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ceo" => Ok(Role::Ceo),
            "hr" => Ok(Role::Hr),
            "senior" => Ok(Role::Senior),
            "junior" => Ok(Role::Junior),
            _ => Err(format!("unknown role '{s}' (expected ceo, hr, senior or junior)")),
        }
    }
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Assigned,
    InProgress,
    Done,
    Cancelled,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Assigned => "assigned",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Done => "done",
            TaskStatus::Cancelled => "cancelled",
        }
    }
    pub fn is_closed(self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Cancelled)
    }
}

impl std::str::FromStr for TaskStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "open" => Ok(TaskStatus::Open),
            "assigned" => Ok(TaskStatus::Assigned),
            "in_progress" | "started" => Ok(TaskStatus::InProgress),
            "done" => Ok(TaskStatus::Done),
            "cancelled" | "canceled" => Ok(TaskStatus::Cancelled),
            _ => Err(format!("unknown status '{s}' (expected open, assigned, in_progress, done or cancelled)")),
        }
    }
}

/// The genesis event: names the org and its founder, who holds the CEO role. The founder's
/// key signs this very event; the org id is this commit's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgCreated {
    pub name: String,
    pub founder: String,
    /// `ssh-ed25519 AAAA…`
    pub public_key: String,
}

/// A new agent joins the roster with a role and a public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentRegistered {
    pub id: String,
    pub role: Role,
    /// `ssh-ed25519 AAAA…`
    pub public_key: String,
}

/// A project groups tasks; its name is chosen and unique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectCreated {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// A new task. Its id is `t-` and the first hex digits of this commit's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskCreated {
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Ids of the tasks that must be done before this one is ready.
    #[serde(default)]
    pub after: Vec<String>,
}

/// A change to a task's title, description or dependencies (dependencies are only added).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskUpdated {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Dependencies to add.
    #[serde(default)]
    pub after: Vec<String>,
}

/// A task is given to an agent, by a lead (`claim: false`) or by the agent itself (`claim: true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskAssigned {
    pub assignee: String,
    #[serde(default)]
    pub claim: bool,
}

/// A task moves to `in_progress`, `done` or `cancelled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskStatusChanged {
    pub status: TaskStatus,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A file produced for a task. Its content is the blob `files/<path>` in this event's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactProduced {
    /// Name of the artifact; also its path under `files/` in the event's tree.
    pub path: String,
    /// Free-form kind: `report`, `patch`, `log`, `binary`, …
    pub kind: String,
    /// Git blob id of the content.
    pub blob: String,
    pub size: u64,
}

/// A test command was run against a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRun {
    /// The commit that was tested.
    pub commit: String,
    pub command: Vec<String>,
    pub passed: bool,
    #[serde(default)]
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    #[serde(default)]
    pub pr: Option<String>,
    /// Blob id of the output's tail, stored under `files/` in the event's tree.
    #[serde(default)]
    pub output_blob: Option<String>,
}

/// A pull request: a branch proposed for merging into a base branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrOpened {
    pub title: String,
    pub base: String,
    pub head_branch: String,
    /// The head commit when opened.
    pub head: String,
}

/// A PR's branch moved: a new head commit. Earlier approvals no longer count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrUpdated {
    pub pr: String,
    pub head: String,
}

/// What a review says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    RequestChanges,
    Comment,
}

/// A review of a PR, bound to the head commit the reviewer saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewCommented {
    pub pr: String,
    pub head: String,
    pub verdict: Verdict,
    pub body: String,
}

/// The merge gate as it was evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub required_approvals: u32,
    /// Agents whose approvals on the current head counted.
    pub approvals: Vec<String>,
    pub require_tests: bool,
    /// The passing `TEST_RUN` on the head, when there is one.
    #[serde(default)]
    pub test_run: Option<String>,
    /// Conditions that did not hold; empty when the gate is open.
    #[serde(default)]
    pub unmet: Vec<String>,
}

/// A Senior or the CEO approved the merge; the base branch moves to `result`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeApproved {
    pub pr: String,
    pub head: String,
    pub gate: Gate,
    /// The commit the base branch moves to.
    pub result: String,
}

/// A merge was refused; `gate.unmet` says why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBlocked {
    pub pr: String,
    pub head: String,
    pub gate: Gate,
}

/// HR's evaluation of an agent over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalReported {
    pub agent: String,
    /// Window length, such as `7d`.
    pub window: String,
    /// The scorecard figures, by name.
    pub scorecard: std::collections::BTreeMap<String, f64>,
    #[serde(default)]
    pub summary: Option<String>,
}

/// HR proposes to hire an agent; the CEO decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HiringProposal {
    pub agent: String,
    pub role: Role,
    pub public_key: String,
    pub reason: String,
}

/// HR proposes to fire an agent; the CEO decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FiringProposal {
    pub agent: String,
    pub reason: String,
}

/// The CEO's decision: on a proposal, or setting policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRecorded {
    /// The proposal decided on, when there is one.
    #[serde(default)]
    pub proposal: Option<String>,
    #[serde(default)]
    pub approve: Option<bool>,
    /// Policy knobs set by this decision, as `name = value`.
    #[serde(default)]
    pub policy: std::collections::BTreeMap<String, String>,
    pub reason: String,
}

/// A spending limit on the org, a project, an agent or a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetUpdated {
    /// `org`, `project:NAME`, `agent:ID` or `task:ID`.
    pub scope: String,
    #[serde(default)]
    pub usd_micros: Option<u64>,
    #[serde(default)]
    pub tokens: Option<u64>,
}

/// Two diverged copies of the log joined: the commit's first parent is the local head, the
/// others are the heads it merges (listed here too, for plain-git readers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogMerged {
    pub merged: Vec<String>,
}

/// An agent's runtime definition: which runtime runs it and that runtime's settings
/// (`command`, `model`, `allowed_tools`, `timeout_s`, `test_command`, …). Values may
/// reference secrets as `secret:NAME`; secrets themselves never enter the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentConfigured {
    pub agent: String,
    pub runtime: String,
    #[serde(default)]
    pub settings: std::collections::BTreeMap<String, String>,
}

/// What a run is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunPurpose {
    /// Work a task: change files on its branch, open or update its PR.
    Work,
    /// Review a PR's head.
    Review,
}

/// An agent run begins. Its id is `r-` and the first hex digits of this commit's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunStarted {
    pub agent: String,
    pub runtime: String,
    pub purpose: RunPurpose,
    #[serde(default)]
    pub pr: Option<String>,
    /// The commit the run starts from.
    pub base: String,
    /// The secrets the run received from the vault: names and fingerprints, never values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretRef>,
    /// `sha256:` hash of the policy (sandbox, tool allowlist, network) the run ran under,
    /// when the agent's definition sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// A secret a run received: which one, and which version of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub name: String,
    /// 16 hex digits: SHA-256 of the secret's salt and value (see docs/vault.md).
    pub fingerprint: String,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Failed,
    TimedOut,
}

/// An agent run ended; the envelope's cost is what the run cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunFinished {
    pub run: String,
    pub status: RunStatus,
    #[serde(default)]
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    pub summary: String,
    /// The commit the run produced on the task branch, if any.
    #[serde(default)]
    pub commit: Option<String>,
    /// The rate card that priced the run's tokens (cost source `rate_card`), e.g. `openai-2026-11`.
    #[serde(default)]
    pub rate_card: Option<String>,
}

/// A run was refused before it started (a budget it cannot fit, a runtime that is missing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRefused {
    pub agent: String,
    pub reason: String,
}
