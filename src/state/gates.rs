//! The reducer for governance events: PRs, reviews, test runs, merges, HR and decisions,
//! budgets. Called from [`super::apply`] after the actor and key are checked; like it, every
//! check runs before the first mutation.

use super::apply::{allow, check_key, check_text, new_agent, new_id, normalize_key, task_of, Applied, Verified, LEADS, WORKERS};
use super::governance::{evaluate_gate, Budget, Decision, Eval, Pr, PrStatus, Proposal, ProposalKind, ProposalStatus, Review, TestRecord};
use super::{AgentStatus, State};
use crate::event::{is_hex_oid, Payload, Role, Verdict};

const HR: &[Role] = &[Role::Ceo, Role::Hr];

pub(super) fn apply(state: &mut State, v: &Verified<'_>, role: Role) -> Result<Applied, String> {
    let e = v.event;
    let mut applied = Applied::default();
    match &e.payload {
        Payload::PrOpened(p) => {
            allow(role, WORKERS, &e.actor, "open PRs")?;
            let task = task_of(state, e)?;
            if task.status.is_closed() {
                return Err(format!("task {} is {}", task.id, task.status.as_str()));
            }
            if role == Role::Junior && task.assignee.as_deref() != Some(e.actor.as_str()) {
                return Err(format!("junior '{}' may only open PRs for tasks assigned to it", e.actor));
            }
            check_text("PR title", &p.title)?;
            check_branch(&p.base)?;
            check_branch(&p.head_branch)?;
            if p.base == p.head_branch {
                return Err(format!("a PR cannot merge {} into itself", p.base));
            }
            check_oid("head", &p.head)?;
            let id = new_id("pr-", v.commit, |id| state.governance.prs.contains_key(id));
            let pr = Pr {
                id: id.clone(),
                task: task.id.clone(),
                project: task.project.clone(),
                author: e.actor.clone(),
                title: p.title.clone(),
                base: p.base.clone(),
                head_branch: p.head_branch.clone(),
                head: p.head.clone(),
                heads: vec![p.head.clone()],
                head_by: e.actor.clone(),
                pushers: vec![e.actor.clone()],
                status: PrStatus::Open,
                opened_at: e.at.clone(),
                updated_at: e.at.clone(),
                reviews: Vec::new(),
                blocked: 0,
                merged_by: None,
                merged_at: None,
                result: None,
                event: v.commit.to_string(),
            };
            state.governance.prs.insert(id.clone(), pr);
            applied.created = Some(id);
        }
        Payload::PrUpdated(p) => {
            let pr = open_pr(state, &p.pr)?;
            if pr.author != e.actor && !LEADS.contains(&role) {
                return Err(format!("only the author or a senior may update {} ({} opened it)", pr.id, pr.author));
            }
            check_oid("head", &p.head)?;
            if pr.head == p.head {
                return Err(format!("{} is already at {}", pr.id, short(&p.head)));
            }
            let pr = state.governance.prs.get_mut(&p.pr).expect("checked above");
            pr.head = p.head.clone();
            pr.heads.push(p.head.clone());
            pr.head_by = e.actor.clone();
            if !pr.pushers.contains(&e.actor) {
                pr.pushers.push(e.actor.clone());
            }
            pr.updated_at = e.at.clone();
        }
        Payload::ReviewCommented(p) => {
            allow(role, WORKERS, &e.actor, "review PRs")?;
            let pr = open_pr(state, &p.pr)?;
            if !pr.heads.contains(&p.head) {
                return Err(format!("{} was never at {}", pr.id, short(&p.head)));
            }
            if p.verdict != Verdict::Comment {
                if pr.author == e.actor {
                    return Err(format!("nobody reviews their own PR with a verdict ({} opened {})", pr.author, pr.id));
                }
                if role == Role::Junior {
                    return Err(format!("junior '{}' may only comment: a junior's verdict does not count", e.actor));
                }
            }
            if p.body.trim().is_empty() && p.verdict != Verdict::Approve {
                return Err("a review that is not an approval needs a message".into());
            }
            let review = Review {
                by: e.actor.clone(),
                role,
                head: p.head.clone(),
                verdict: p.verdict,
                body: p.body.clone(),
                at: e.at.clone(),
                event: v.commit.to_string(),
            };
            let pr = state.governance.prs.get_mut(&p.pr).expect("checked above");
            pr.reviews.push(review);
            pr.updated_at = e.at.clone();
        }
        Payload::TestRun(p) => {
            allow(role, WORKERS, &e.actor, "record test runs")?;
            check_oid("tested commit", &p.commit)?;
            if p.command.is_empty() {
                return Err("a test run needs its command".into());
            }
            if let Some(pr) = &p.pr {
                state.governance.prs.get(pr).ok_or_else(|| format!("no PR '{pr}'"))?;
            }
            if let Some(blob) = &p.output_blob {
                if !v.files.iter().any(|(_, b)| b == blob) {
                    return Err(format!("test output blob {blob} is not in the event's tree"));
                }
            }
            state.governance.test_runs.push(TestRecord {
                commit: p.commit.clone(),
                passed: p.passed,
                exit_code: p.exit_code,
                duration_ms: p.duration_ms,
                by: e.actor.clone(),
                at: e.at.clone(),
                pr: p.pr.clone(),
                task: e.task.clone(),
                event: v.commit.to_string(),
            });
        }
        Payload::MergeApproved(p) => {
            let pr = state.governance.prs.get(&p.pr).ok_or_else(|| format!("no PR '{}'", p.pr))?;
            if pr.head != p.head {
                return Err(format!("approves head {} but {} is at {}", short(&p.head), pr.id, short(&pr.head)));
            }
            check_oid("result", &p.result)?;
            let gate = evaluate_gate(state, pr, &e.actor);
            if !gate.unmet.is_empty() {
                return Err(format!("merge gate of {} does not hold: {}", pr.id, gate.unmet.join("; ")));
            }
            if gate != p.gate {
                return Err(format!("the gate recorded for {} is not the gate the log gives", pr.id));
            }
            // Merging delivers the task.
            let task_id = pr.task.clone();
            if let Some(task) = state.tasks.get_mut(&task_id) {
                if !task.status.is_closed() {
                    task.status = crate::event::TaskStatus::Done;
                    task.done_at = Some(e.at.clone());
                    task.updated_at = e.at.clone();
                }
            }
            let pr = state.governance.prs.get_mut(&p.pr).expect("checked above");
            pr.status = PrStatus::Merged;
            pr.merged_by = Some(e.actor.clone());
            pr.merged_at = Some(e.at.clone());
            pr.result = Some(p.result.clone());
            pr.updated_at = e.at.clone();
        }
        Payload::MergeBlocked(p) => {
            let pr = state.governance.prs.get(&p.pr).ok_or_else(|| format!("no PR '{}'", p.pr))?;
            if p.gate.unmet.is_empty() {
                return Err("MERGE_BLOCKED must say what was unmet".into());
            }
            let id = pr.id.clone();
            state.governance.prs.get_mut(&id).expect("checked above").blocked += 1;
        }
        Payload::EvalReported(p) => {
            allow(role, HR, &e.actor, "report evaluations")?;
            state.agents.get(&p.agent).ok_or_else(|| format!("no agent '{}'", p.agent))?;
            state.governance.evals.push(Eval {
                agent: p.agent.clone(),
                by: e.actor.clone(),
                at: e.at.clone(),
                window: p.window.clone(),
                scorecard: p.scorecard.clone(),
                event: v.commit.to_string(),
            });
        }
        Payload::HiringProposal(p) => {
            allow(role, HR, &e.actor, "propose hires")?;
            super::apply::check_id("agent id", &p.agent)?;
            if state.agents.contains_key(&p.agent) {
                return Err(format!("agent '{}' already exists", p.agent));
            }
            check_key(&p.public_key)?;
            check_text("reason", &p.reason)?;
            let proposal = (ProposalKind::Hire, p.agent.clone(), Some(p.role), Some(normalize_key(&p.public_key)), p.reason.clone());
            applied.created = Some(add_proposal(state, v, proposal));
        }
        Payload::FiringProposal(p) => {
            allow(role, HR, &e.actor, "propose firings")?;
            let agent = state.active_agent(&p.agent).ok_or_else(|| format!("'{}' is not an active agent", p.agent))?;
            if agent.id == e.actor {
                return Err("nobody proposes to fire themselves".into());
            }
            check_text("reason", &p.reason)?;
            let proposal = (ProposalKind::Fire, p.agent.clone(), None, None, p.reason.clone());
            applied.created = Some(add_proposal(state, v, proposal));
        }
        Payload::DecisionRecorded(p) => {
            allow(role, &[Role::Ceo], &e.actor, "record decisions")?;
            check_text("reason", &p.reason)?;
            let policy = state.governance.policy.with(&p.policy)?;
            if p.proposal.is_none() && p.policy.is_empty() {
                return Err("a decision must settle a proposal or set policy".into());
            }
            if p.proposal.is_none() && p.approve.is_some() {
                return Err("approve or reject needs a proposal".into());
            }
            let mut hire = None;
            let mut fire = None;
            if let Some(id) = &p.proposal {
                let proposal = state.governance.proposals.get(id).ok_or_else(|| format!("no proposal '{id}'"))?;
                if proposal.status != ProposalStatus::Pending {
                    return Err(format!("proposal {id} was already decided"));
                }
                let approve = p.approve.ok_or_else(|| format!("a decision on {id} must approve or reject it"))?;
                if approve {
                    match proposal.kind {
                        ProposalKind::Hire => {
                            if state.agents.contains_key(&proposal.agent) {
                                return Err(format!("agent '{}' already exists", proposal.agent));
                            }
                            let key = proposal.public_key.clone().unwrap_or_default();
                            if state.agents.values().any(|a| a.public_key == key) {
                                return Err(format!("the key proposed for '{}' already belongs to another agent", proposal.agent));
                            }
                            hire = Some((proposal.agent.clone(), proposal.role.unwrap_or(Role::Junior), key));
                        }
                        ProposalKind::Fire => {
                            let agent =
                                state.active_agent(&proposal.agent).ok_or_else(|| format!("'{}' is no longer active", proposal.agent))?;
                            let ceos = state.agents.values().filter(|a| a.role == Role::Ceo && a.status == AgentStatus::Active).count();
                            if agent.role == Role::Ceo && ceos == 1 {
                                return Err("the org's last CEO cannot be fired".into());
                            }
                            fire = Some(proposal.agent.clone());
                        }
                    }
                }
                let proposal = state.governance.proposals.get_mut(id).expect("checked above");
                proposal.status = if approve { ProposalStatus::Approved } else { ProposalStatus::Rejected };
                proposal.decision = Some(v.commit.to_string());
            }
            if let Some((id, role, key)) = hire {
                state.agents.insert(id.clone(), new_agent(&id, role, &key, e, v.commit));
                applied.created = Some(id);
            }
            if let Some(id) = fire {
                let agent = state.agents.get_mut(&id).expect("checked above");
                agent.status = AgentStatus::Fired;
                agent.fired_at = Some(e.at.clone());
            }
            state.governance.policy = policy;
            state.governance.decisions.push(Decision {
                by: e.actor.clone(),
                at: e.at.clone(),
                proposal: p.proposal.clone(),
                approve: p.approve,
                policy: p.policy.clone(),
                reason: p.reason.clone(),
                event: v.commit.to_string(),
            });
        }
        Payload::BudgetUpdated(p) => {
            allow(role, &[Role::Ceo], &e.actor, "set budgets")?;
            check_scope(state, &p.scope)?;
            if p.usd_micros.is_none() && p.tokens.is_none() {
                return Err("a budget update must set a dollar or a token limit".into());
            }
            // A limit not named keeps its value.
            let previous = state.governance.budgets.get(&p.scope);
            let budget = Budget {
                scope: p.scope.clone(),
                usd_micros: p.usd_micros.or(previous.and_then(|b| b.usd_micros)),
                tokens: p.tokens.or(previous.and_then(|b| b.tokens)),
                set_by: e.actor.clone(),
                set_at: e.at.clone(),
            };
            state.governance.budgets.insert(p.scope.clone(), budget);
        }
        other => unreachable!("{} is not a governance event", other.event_type()),
    }
    Ok(applied)
}

/// Record a pending proposal made by this event; returns its id (`p-` + 7 hex of the commit).
fn add_proposal(state: &mut State, v: &Verified<'_>, (kind, agent, role, public_key, reason): ProposalParts) -> String {
    let e = v.event;
    let id = new_id("p-", v.commit, |id| state.governance.proposals.contains_key(id));
    let proposal = Proposal {
        id: id.clone(),
        kind,
        agent,
        role,
        public_key,
        reason,
        by: e.actor.clone(),
        at: e.at.clone(),
        status: ProposalStatus::Pending,
        decision: None,
        event: v.commit.to_string(),
    };
    state.governance.proposals.insert(id.clone(), proposal);
    id
}

/// What a proposal proposes: kind, agent, role and key (hires), reason.
type ProposalParts = (ProposalKind, String, Option<Role>, Option<String>, String);

fn open_pr<'s>(state: &'s State, id: &str) -> Result<&'s Pr, String> {
    let pr = state.governance.prs.get(id).ok_or_else(|| format!("no PR '{id}'"))?;
    if pr.status != PrStatus::Open {
        return Err(format!("{id} is already merged"));
    }
    Ok(pr)
}

/// `org`, `project:NAME`, `agent:ID` or `task:ID`, naming something that exists.
pub fn check_scope(state: &State, scope: &str) -> Result<(), String> {
    let exists = match scope.split_once(':') {
        None if scope == "org" => true,
        Some(("project", name)) => state.projects.contains_key(name),
        Some(("agent", id)) => state.agents.contains_key(id),
        Some(("task", id)) => state.tasks.contains_key(id),
        _ => return Err(format!("budget scope '{scope}' is not org, project:NAME, agent:ID or task:ID")),
    };
    if exists {
        Ok(())
    } else {
        Err(format!("budget scope '{scope}' names nothing in the org"))
    }
}

fn check_branch(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with(['-', '/'])
        && !name.ends_with(['/', '.'])
        && !name.contains("..")
        && !name.contains("//")
        && !name.ends_with(".lock")
        && name.chars().all(|c| c.is_ascii_graphic() && !matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\'));
    if ok {
        Ok(())
    } else {
        Err(format!("'{name}' is not a valid branch name"))
    }
}

fn check_oid(what: &str, oid: &str) -> Result<(), String> {
    if is_hex_oid(oid) {
        Ok(())
    } else {
        Err(format!("{what} '{oid}' is not a full commit id"))
    }
}

fn short(oid: &str) -> &str {
    super::governance::short(oid)
}
