//! Governance state: PRs and their reviews, test runs, the merge gate, policy, HR proposals
//! and the CEO's decisions, budgets.
//!
//! The gate is one function, [`evaluate_gate`]: `pr merge` calls it to decide what to record,
//! and the reducer calls it again on every MERGE_APPROVED it replays, so an approval forged
//! with plain git that the gate would not have allowed is refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{AgentStatus, State};
use crate::event::{Gate, Role, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrStatus {
    Open,
    Merged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pr {
    pub id: String,
    pub task: String,
    pub project: Option<String>,
    pub author: String,
    pub title: String,
    pub base: String,
    pub head_branch: String,
    /// The current head commit.
    pub head: String,
    /// Every head the PR has had, oldest first.
    pub heads: Vec<String>,
    /// Who recorded the current head: the author, or whoever ran `pr update`.
    pub head_by: String,
    /// Everyone who ever recorded a head of this PR: none of their verdicts count, so nobody
    /// approves code they pushed (not even by moving the head away and back).
    pub pushers: Vec<String>,
    pub status: PrStatus,
    pub opened_at: String,
    pub updated_at: String,
    pub reviews: Vec<Review>,
    /// MERGE_BLOCKED events recorded against it.
    pub blocked: u32,
    pub merged_by: Option<String>,
    pub merged_at: Option<String>,
    /// The commit the base branch moved to.
    pub result: Option<String>,
    /// The commit that opened it.
    pub event: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub by: String,
    pub role: Role,
    /// The head commit the reviewer saw.
    pub head: String,
    pub verdict: Verdict,
    pub body: String,
    pub at: String,
    pub event: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestRecord {
    pub commit: String,
    pub passed: bool,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    pub by: String,
    pub at: String,
    pub pr: Option<String>,
    pub task: Option<String>,
    pub event: String,
}

/// Whose passing TEST_RUN satisfies `require_tests`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestsBy {
    /// Anyone's, the PR's author included: the author vouches for its own head.
    #[default]
    Anyone,
    /// Only a Senior's or the CEO's who is not the PR's author: tests are run by someone who
    /// does not gain from their passing.
    Reviewers,
}

impl TestsBy {
    pub fn as_str(self) -> &'static str {
        match self {
            TestsBy::Anyone => "anyone",
            TestsBy::Reviewers => "reviewers",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMode {
    /// Always a merge commit, signed by the merger.
    Merge,
    /// Fast-forward when the base is an ancestor of the head, else a merge commit.
    Ff,
}

/// The knobs the CEO sets with `decide --policy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Senior approvals a Junior's PR needs on its current head.
    pub required_approvals: u32,
    /// Whether a passing TEST_RUN on the head is required to merge.
    pub require_tests: bool,
    /// Whose TEST_RUN counts for that.
    #[serde(default)]
    pub tests_by: TestsBy,
    pub merge_mode: MergeMode,
    /// Branches that move only through an approved merge.
    pub protected_branches: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            required_approvals: 1,
            require_tests: false,
            tests_by: TestsBy::Anyone,
            merge_mode: MergeMode::Merge,
            protected_branches: vec!["main".into()],
        }
    }
}

impl Policy {
    /// Every knob with its current value, as `decide --policy` spells them.
    pub fn knobs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("required_approvals", self.required_approvals.to_string()),
            ("require_tests", self.require_tests.to_string()),
            ("tests_by", self.tests_by.as_str().to_string()),
            ("merge_mode", format!("{:?}", self.merge_mode).to_lowercase()),
            ("protected_branches", self.protected_branches.join(",")),
        ]
    }

    /// Apply `name = value` pairs to a copy, or say which one is wrong.
    pub fn with(&self, changes: &BTreeMap<String, String>) -> Result<Policy, String> {
        let mut policy = self.clone();
        for (name, value) in changes {
            let bad = || format!("policy {name} cannot be '{value}'");
            match name.as_str() {
                "required_approvals" => {
                    policy.required_approvals = value.parse().ok().filter(|n: &u32| *n <= 10).ok_or_else(|| bad() + " (0 to 10)")?
                }
                "require_tests" => policy.require_tests = value.parse().map_err(|_| bad() + " (true or false)")?,
                "tests_by" => {
                    policy.tests_by = match value.as_str() {
                        "anyone" => TestsBy::Anyone,
                        "reviewers" => TestsBy::Reviewers,
                        _ => return Err(bad() + " (anyone or reviewers)"),
                    }
                }
                "merge_mode" => {
                    policy.merge_mode = match value.as_str() {
                        "merge" => MergeMode::Merge,
                        "ff" => MergeMode::Ff,
                        _ => return Err(bad() + " (merge or ff)"),
                    }
                }
                "protected_branches" => {
                    policy.protected_branches = value.split(',').map(str::trim).filter(|b| !b.is_empty()).map(str::to_string).collect()
                }
                _ => {
                    return Err(format!(
                        "unknown policy '{name}' (known: required_approvals, require_tests, tests_by, merge_mode, protected_branches)"
                    ))
                }
            }
        }
        Ok(policy)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProposalKind {
    Hire,
    Fire,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProposalStatus {
    Pending,
    Approved,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub id: String,
    pub kind: ProposalKind,
    pub agent: String,
    pub role: Option<Role>,
    pub public_key: Option<String>,
    pub reason: String,
    pub by: String,
    pub at: String,
    pub status: ProposalStatus,
    /// The DECISION_RECORDED commit that settled it.
    pub decision: Option<String>,
    pub event: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub by: String,
    pub at: String,
    pub proposal: Option<String>,
    pub approve: Option<bool>,
    pub policy: BTreeMap<String, String>,
    pub reason: String,
    pub event: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// `org`, `project:NAME`, `agent:ID` or `task:ID`.
    pub scope: String,
    pub usd_micros: Option<u64>,
    pub tokens: Option<u64>,
    pub set_by: String,
    pub set_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Eval {
    pub agent: String,
    pub by: String,
    pub at: String,
    pub window: String,
    pub scorecard: BTreeMap<String, f64>,
    pub event: String,
}

/// Everything governance adds to the state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Governance {
    pub prs: BTreeMap<String, Pr>,
    pub test_runs: Vec<TestRecord>,
    pub policy: Policy,
    pub proposals: BTreeMap<String, Proposal>,
    pub decisions: Vec<Decision>,
    pub budgets: BTreeMap<String, Budget>,
    pub evals: Vec<Eval>,
}

/// Evaluate the merge gate of `pr` for `merger` against the current state and policy.
pub fn evaluate_gate(state: &State, pr: &Pr, merger: &str) -> Gate {
    let policy = &state.governance.policy;
    let mut unmet = Vec::new();
    match state.agents.get(merger) {
        Some(agent) if agent.status == AgentStatus::Active => {
            if !matches!(agent.role, Role::Ceo | Role::Senior) {
                unmet.push(format!("{} '{merger}' may not merge (that takes senior or ceo)", agent.role));
            }
        }
        _ => unmet.push(format!("'{merger}' is not an active agent")),
    }
    if pr.status != PrStatus::Open {
        unmet.push(format!("{} is already merged", pr.id));
    }
    if merger == pr.author {
        unmet.push(format!("nobody merges their own PR ({} opened {})", pr.author, pr.id));
    }
    let author_role = state.agents.get(&pr.author).map(|a| a.role).unwrap_or(Role::Junior);
    let required = if author_role == Role::Junior { policy.required_approvals } else { 0 };
    let (approvals, changes_requested) = current_verdicts(state, pr);
    if (approvals.len() as u32) < required {
        let stale: Vec<&str> = pr
            .reviews
            .iter()
            .filter(|r| r.head != pr.head && r.verdict == Verdict::Approve && counts(state, pr, r))
            .map(|r| r.by.as_str())
            .collect();
        let mut reason = format!("needs {required} senior approval(s) on head {}, has {}", short(&pr.head), approvals.len());
        if !stale.is_empty() {
            reason.push_str(&format!(" (stale: approval by {} is on an older head)", dedup(stale).join(", ")));
        }
        unmet.push(reason);
    }
    for reviewer in &changes_requested {
        unmet.push(format!("{reviewer} requested changes on head {}", short(&pr.head)));
    }
    let mut test_run = None;
    if policy.require_tests {
        let latest = state.governance.test_runs.iter().rev().find(|t| t.commit == pr.head && test_counts(state, pr, policy, t));
        match latest {
            Some(t) if t.passed => test_run = Some(t.event.clone()),
            Some(t) => unmet.push(format!(
                "the latest TEST_RUN on head {} failed ({})",
                short(&pr.head),
                t.exit_code.map_or("killed by a signal".to_string(), |c| format!("exit {c}"))
            )),
            None if policy.tests_by == TestsBy::Reviewers => {
                let own = state.governance.test_runs.iter().any(|t| t.commit == pr.head && t.by == pr.author);
                let mut others: Vec<&str> = pr.pushers.iter().map(String::as_str).filter(|p| *p != pr.author).collect();
                others.dedup();
                let who = std::iter::once(pr.author.as_str()).chain(others).collect::<Vec<_>>().join(" or ");
                unmet.push(format!(
                    "no TEST_RUN on head {} by a senior or the ceo other than {who} (policy tests_by=reviewers{})",
                    short(&pr.head),
                    if own { format!("; {}'s own does not count", pr.author) } else { String::new() }
                ))
            }
            None => unmet.push(format!("no TEST_RUN on head {} (policy require_tests)", short(&pr.head))),
        }
    }
    Gate { required_approvals: required, approvals, require_tests: policy.require_tests, test_run, unmet }
}

/// Whether `test` may satisfy the policy's `require_tests` for `pr`: anyone's, or with
/// `tests_by=reviewers` only an active Senior's or the CEO's who neither opened the PR nor
/// pushed a head of it (the same people whose approval counts).
pub fn test_counts(state: &State, pr: &Pr, policy: &Policy, test: &TestRecord) -> bool {
    match policy.tests_by {
        TestsBy::Anyone => true,
        TestsBy::Reviewers => {
            test.by != pr.author
                && !pr.pushers.contains(&test.by)
                && state.agents.get(&test.by).is_some_and(|a| a.status == AgentStatus::Active && matches!(a.role, Role::Ceo | Role::Senior))
        }
    }
}

/// Reviewers whose latest counting review on the current head approves, and those whose
/// latest one requests changes.
fn current_verdicts(state: &State, pr: &Pr) -> (Vec<String>, Vec<String>) {
    let mut latest: BTreeMap<&str, Verdict> = BTreeMap::new();
    for review in pr.reviews.iter().filter(|r| r.head == pr.head && counts(state, pr, r)) {
        if review.verdict != Verdict::Comment {
            latest.insert(review.by.as_str(), review.verdict);
        }
    }
    let approvals = latest.iter().filter(|(_, v)| **v == Verdict::Approve).map(|(by, _)| by.to_string()).collect();
    let changes = latest.iter().filter(|(_, v)| **v == Verdict::RequestChanges).map(|(by, _)| by.to_string()).collect();
    (approvals, changes)
}

/// A review counts when a Senior or the CEO wrote it who is still active and is neither the
/// PR's author nor the one who put the reviewed head there.
fn counts(state: &State, pr: &Pr, review: &Review) -> bool {
    review.by != pr.author
        && !pr.pushers.contains(&review.by)
        && matches!(review.role, Role::Ceo | Role::Senior)
        && state.agents.get(&review.by).is_some_and(|a| a.status == AgentStatus::Active)
}

fn dedup(mut names: Vec<&str>) -> Vec<&str> {
    names.sort_unstable();
    names.dedup();
    names
}

pub fn short(oid: &str) -> &str {
    &oid[..oid.len().min(10)]
}
