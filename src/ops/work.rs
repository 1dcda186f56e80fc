//! `git clutch work`: the organization at work. Each round it merges what passes the gate,
//! sends PRs whose head awaits a verdict to a reviewer agent, and gives ready tasks (and tasks
//! whose PR needs changes) to idle workers — at most `parallel` runs at once, never two on one
//! task, never a task before its dependencies are merged and done.

use std::collections::HashSet;

use crate::event::{Role, TaskStatus, Verdict};
use crate::state::{evaluate_gate, AgentStatus, PrStatus, State};
use crate::{Error, Result};

use super::run::{self, RunReport};
use super::{pr, Ctx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Stop when nothing is left to do.
    Idle,
    /// Stop after this many runs.
    Runs(usize),
}

/// One thing the organization does next.
#[derive(Debug, Clone)]
enum Action {
    Work { agent: String, task: String },
    Review { agent: String, pr: String },
}

/// What happened, in order.
#[derive(Debug, Default, serde::Serialize)]
pub struct WorkReport {
    pub runs: Vec<RunReport>,
    pub merged: Vec<(String, String)>,
    pub errors: Vec<String>,
    /// Open PRs left when work stopped, each with what its merge still waits for.
    pub waiting: Vec<(String, String)>,
}

fn automated(state: &State, role: &[Role], program: &str) -> Vec<String> {
    state
        .agents
        .values()
        .filter(|a| a.status == AgentStatus::Active && role.contains(&a.role))
        .filter(|a| {
            a.runtime.as_ref().is_some_and(|r| r.runtime != "in-process" || r.settings.get("program").map(String::as_str) == Some(program))
        })
        .map(|a| a.id.clone())
        .collect()
}

/// Run the organization; `say` is told each step as it happens.
pub fn work(ctx: &Ctx, parallel: usize, until: Until, say: &(dyn Fn(&str) + Sync)) -> Result<WorkReport> {
    let parallel = parallel.max(1);
    let mut report = WorkReport::default();
    let mut failures: HashSet<String> = HashSet::new();
    // Why a merge whose gate held was still refused (a conflict, a moved branch), by PR.
    let mut refused: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    loop {
        if let Until::Runs(n) = until {
            if report.runs.len() >= n {
                break;
            }
        }
        let state = ctx.load()?.state;
        let reviewers = automated(&state, &[Role::Senior, Role::Ceo], "reviewer");

        // Merge what the gate lets through.
        let mut merged_any = false;
        for p in state.governance.prs.values().filter(|p| p.status == PrStatus::Open) {
            let Some(merger) = reviewers.iter().find(|r| evaluate_gate(&state, p, r).unmet.is_empty()) else { continue };
            match pr::merge(ctx, merger, &p.id)? {
                pr::Merged::Approved { result, base, .. } => {
                    say(&format!("{merger} merged {} ({}) into {base} at {}", p.id, p.task, &result.to_string()[..10]));
                    report.merged.push((p.id.clone(), result.to_string()));
                    merged_any = true;
                }
                pr::Merged::Blocked { gate, .. } => {
                    refused.insert(p.id.clone(), gate.unmet.join("; "));
                    report.errors.push(format!("{} blocked: {}", p.id, gate.unmet.join("; ")));
                    failures.insert(p.id.clone());
                }
            }
        }
        if merged_any {
            continue;
        }

        let actions = plan(&state, &reviewers, &failures, parallel);
        if actions.is_empty() {
            break;
        }
        let place = ctx.place();
        let results: Vec<(Action, Result<RunReport>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = actions
                .into_iter()
                .map(|action| {
                    let (place, env) = (place.clone(), ctx.env.clone());
                    scope.spawn(move || {
                        // Each thread opens the repository itself: a gix handle stays on its thread.
                        let result = Ctx::open(&place, env).and_then(|ctx| match &action {
                            Action::Work { agent, task } => run::work(&ctx, agent, task),
                            Action::Review { agent, pr } => run::review(&ctx, agent, pr),
                        });
                        (action, result)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a run thread panicked")).collect()
        });
        for (action, result) in results {
            match result {
                Ok(run) => {
                    let what = match (&action, run.verdict) {
                        (Action::Work { .. }, _) => format!(
                            "{} worked {}: {}{}{}",
                            run.agent,
                            run.task,
                            run.summary,
                            run.pr.as_ref().map(|p| format!(" → {p}")).unwrap_or_default(),
                            match run.tests_passed {
                                Some(true) => ", tests pass",
                                Some(false) => ", tests FAIL",
                                None => "",
                            }
                        ),
                        (Action::Review { pr, .. }, Some(Verdict::Approve)) => {
                            format!("{} approved {pr}{}", run.agent, if run.tests_passed == Some(true) { ", tests pass" } else { "" })
                        }
                        (Action::Review { pr, .. }, Some(Verdict::RequestChanges)) => {
                            format!("{} asked for changes on {pr}: {}", run.agent, run.summary)
                        }
                        (Action::Review { pr, .. }, _) => format!("{} commented on {pr}", run.agent),
                    };
                    say(&what);
                    if run.status != crate::event::RunStatus::Succeeded {
                        failures.insert(key(&action));
                    } else if let (Action::Work { .. }, None, Some(pr)) = (&action, &run.commit, &run.pr) {
                        // A rework that changed nothing leaves the PR with changes requested:
                        // giving the task back again would loop forever.
                        let why = format!(
                            "{}: {}'s rework changed nothing, so {pr} still has changes requested; left alone for this session",
                            run.task, run.agent
                        );
                        say(&why);
                        report.errors.push(why);
                        failures.insert(key(&action));
                    }
                    report.runs.push(run);
                }
                Err(err) => {
                    say(&format!("{} failed: {}", key(&action), err.message));
                    report.errors.push(format!("{}: {}", key(&action), err.message));
                    failures.insert(key(&action));
                    if err.kind == crate::error::Kind::Internal {
                        return Err(err);
                    }
                }
            }
        }
        // A signal stopped the runs of this round: start no more.
        if let Some(signal) = crate::interrupt::interrupted() {
            return Err(Error::interrupted(
                signal,
                format!("interrupted by {} after {} runs: the runs under way were stopped and recorded", signal.name, report.runs.len()),
            ));
        }
    }
    let state = ctx.load()?.state;
    report.waiting = waiting(&state, &automated(&state, &[Role::Senior, Role::Ceo], "reviewer"), &failures, &refused);
    for (pr, why) in &report.waiting {
        say(&format!("{pr} waits: {why}"));
    }
    Ok(report)
}

/// The open PRs left, and what each waits for: the unmet conditions of the gate as the first
/// automated reviewer who is not the author would meet it, else why its merge or its review
/// failed this session.
fn waiting(
    state: &State,
    reviewers: &[String],
    failures: &HashSet<String>,
    refused: &std::collections::HashMap<String, String>,
) -> Vec<(String, String)> {
    state
        .governance
        .prs
        .values()
        .filter(|p| p.status == PrStatus::Open)
        .map(|p| {
            let unmet = match reviewers.iter().find(|r| **r != p.author) {
                Some(merger) => evaluate_gate(state, p, merger).unmet.join("; "),
                None => "no automated senior or ceo other than its author to review and merge it".to_string(),
            };
            let failed = failures.contains(&p.id);
            let note = if failed { " (its review run failed this session)" } else { "" };
            let why = match (unmet.is_empty(), refused.get(&p.id)) {
                (false, _) => format!("{unmet}{note}"),
                (true, Some(refusal)) => format!("its gate holds, but the merge was refused: {refusal}{note}"),
                (true, None) if failed => "its review run failed this session (see the errors)".to_string(),
                (true, None) => "nothing: the next `git clutch work` merges it".to_string(),
            };
            (p.id.clone(), why)
        })
        .collect()
}

fn key(action: &Action) -> String {
    match action {
        Action::Work { task, .. } => task.clone(),
        Action::Review { pr, .. } => pr.clone(),
    }
}

/// The next runs: reviews of heads that await a verdict first, then work.
fn plan(state: &State, reviewers: &[String], failures: &HashSet<String>, parallel: usize) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut busy: HashSet<String> = HashSet::new();
    let mut tasks_taken: HashSet<String> = HashSet::new();
    for p in state.governance.prs.values().filter(|p| p.status == PrStatus::Open && !failures.contains(&p.id)) {
        let has_verdict = p.reviews.iter().any(|r| r.head == p.head && r.verdict != Verdict::Comment && reviewers.contains(&r.by));
        if has_verdict {
            continue;
        }
        if let Some(reviewer) = reviewers.iter().find(|r| **r != p.author && !p.pushers.contains(*r) && !busy.contains(*r)) {
            busy.insert(reviewer.clone());
            tasks_taken.insert(p.task.clone());
            actions.push(Action::Review { agent: reviewer.clone(), pr: p.id.clone() });
        }
    }
    let workers = automated(state, &[Role::Junior, Role::Senior], "worker");
    // Tasks already in someone's hands that need another run: changes were asked for.
    for t in state.tasks.values().filter(|t| matches!(t.status, TaskStatus::InProgress | TaskStatus::Assigned)) {
        let Some(agent) = t.assignee.clone() else { continue };
        if !workers.contains(&agent) || busy.contains(&agent) || tasks_taken.contains(&t.id) || failures.contains(&t.id) {
            continue;
        }
        let pr = state.governance.prs.values().find(|p| p.task == t.id && p.status == PrStatus::Open);
        let needs_run = match pr {
            None => state.dependencies_done(t),
            Some(p) => p
                .reviews
                .iter()
                .rev()
                .find(|r| r.head == p.head && r.verdict != Verdict::Comment)
                .is_some_and(|r| r.verdict == Verdict::RequestChanges),
        };
        if needs_run {
            busy.insert(agent.clone());
            tasks_taken.insert(t.id.clone());
            actions.push(Action::Work { agent, task: t.id.clone() });
        }
    }
    // Ready, unassigned tasks to idle workers, oldest first.
    let mut ready: Vec<_> =
        state.tasks.values().filter(|t| t.assignee.is_none() && state.is_ready(t) && !failures.contains(&t.id)).collect();
    ready.sort_by_key(|t| t.seq);
    for t in ready {
        let Some(agent) = workers.iter().find(|w| {
            !busy.contains(*w) && !state.tasks.values().any(|o| o.assignee.as_deref() == Some(w.as_str()) && !o.status.is_closed())
        }) else {
            break;
        };
        busy.insert(agent.clone());
        actions.push(Action::Work { agent: agent.clone(), task: t.id.clone() });
    }
    actions.truncate(parallel);
    actions
}
