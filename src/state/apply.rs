//! The reducer: one event in, state changed or a refusal out.
//!
//! Every check runs before the first mutation, so a refused event leaves no trace.

use super::{Agent, AgentStatus, Artifact, Org, Project, Spend, State, Task};
use crate::event::{Event, Payload, Role, TaskStatus};

/// An event whose signature has been checked: `signer` is the key that made it.
#[derive(Debug, Clone, Copy)]
pub struct Verified<'a> {
    /// The event's commit id (hex).
    pub commit: &'a str,
    /// The signing key, `ssh-ed25519 AAAA…`.
    pub signer: &'a str,
    pub event: &'a Event,
    /// Blobs under `files/` in the commit's tree: (name, blob id hex).
    pub files: &'a [(String, String)],
    /// The commit has no parents.
    pub is_root: bool,
}

/// What applying an event made, when it made something with an id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub created: Option<String>,
}

pub(super) const LEADS: &[Role] = &[Role::Ceo, Role::Senior];
pub(super) const WORKERS: &[Role] = &[Role::Ceo, Role::Senior, Role::Junior];

/// Apply one event, or say why it is refused (and change nothing).
pub fn apply(state: &mut State, v: &Verified<'_>) -> Result<Applied, String> {
    let e = v.event;
    if let Payload::OrgCreated(p) = &e.payload {
        if state.org.is_some() {
            return Err("the org already exists: a log has exactly one ORG_CREATED".into());
        }
        if !v.is_root {
            return Err("ORG_CREATED must be the first commit of the log".into());
        }
        check_id("founder id", &p.founder)?;
        check_text("org name", &p.name)?;
        if e.actor != p.founder {
            return Err(format!("ORG_CREATED names founder '{}' but is made by '{}'", p.founder, e.actor));
        }
        if normalize_key(&p.public_key) != v.signer {
            return Err("ORG_CREATED is not signed with the founder's key".into());
        }
        state.org = Some(Org { id: v.commit.to_string(), name: p.name.clone(), founder: p.founder.clone(), created_at: e.at.clone() });
        state.agents.insert(p.founder.clone(), new_agent(&p.founder, Role::Ceo, v.signer, e, v.commit));
        finish(state, e);
        return Ok(Applied::default());
    }
    if state.org.is_none() {
        return Err("the log does not start with a valid ORG_CREATED".into());
    }
    let agent = state.agents.get(&e.actor).ok_or_else(|| format!("'{}' is not an agent of this org", e.actor))?;
    if agent.status == AgentStatus::Fired {
        return Err(format!("agent '{}' was fired and may no longer act", e.actor));
    }
    if agent.public_key != v.signer {
        return Err(format!("signed with a key that is not the roster's key for '{}'", e.actor));
    }
    let role = agent.role;
    check_envelope_scope(state, e)?;
    let mut applied = Applied::default();

    match &e.payload {
        Payload::OrgCreated(_) => unreachable!("handled above"),
        Payload::AgentRegistered(p) => {
            allow(role, &[Role::Ceo], &e.actor, "add agents")?;
            check_id("agent id", &p.id)?;
            if state.agents.contains_key(&p.id) {
                return Err(format!("agent '{}' already exists", p.id));
            }
            check_key(&p.public_key)?;
            let key = normalize_key(&p.public_key);
            if let Some(holder) = state.agents.values().find(|a| a.public_key == key) {
                return Err(format!("that key already belongs to agent '{}'", holder.id));
            }
            state.agents.insert(p.id.clone(), new_agent(&p.id, p.role, &normalize_key(&p.public_key), e, v.commit));
            applied.created = Some(p.id.clone());
        }
        Payload::ProjectCreated(p) => {
            allow(role, LEADS, &e.actor, "create projects")?;
            check_id("project name", &p.name)?;
            if state.projects.contains_key(&p.name) {
                return Err(format!("project '{}' already exists", p.name));
            }
            state.projects.insert(
                p.name.clone(),
                Project {
                    name: p.name.clone(),
                    description: p.description.clone(),
                    created_by: e.actor.clone(),
                    created_at: e.at.clone(),
                    spend: Spend::default(),
                },
            );
            applied.created = Some(p.name.clone());
        }
        Payload::TaskCreated(p) => {
            allow(role, LEADS, &e.actor, "create tasks")?;
            if e.task.is_some() {
                return Err("TASK_CREATED must not name a task: its id comes from its commit".into());
            }
            check_text("task title", &p.title)?;
            if let Some(project) = &e.project {
                if !state.projects.contains_key(project) {
                    return Err(format!("no project '{project}'"));
                }
            }
            check_dependencies(state, &p.after)?;
            let id = new_task_id(state, v.commit);
            state.tasks.insert(
                id.clone(),
                Task {
                    id: id.clone(),
                    seq: state.events + 1,
                    title: p.title.clone(),
                    description: p.description.clone(),
                    project: e.project.clone(),
                    after: p.after.clone(),
                    status: TaskStatus::Open,
                    assignee: None,
                    created_by: e.actor.clone(),
                    created_at: e.at.clone(),
                    updated_at: e.at.clone(),
                    assigned_at: None,
                    done_at: None,
                    event: v.commit.to_string(),
                    spend: Spend::default(),
                },
            );
            applied.created = Some(id);
        }
        Payload::TaskUpdated(p) => {
            allow(role, LEADS, &e.actor, "edit tasks")?;
            let task = task_of(state, e)?;
            if task.status.is_closed() {
                return Err(format!("task {} is {}: it can no longer change", task.id, task.status.as_str()));
            }
            if let Some(title) = &p.title {
                check_text("task title", title)?;
            }
            check_dependencies(state, &p.after)?;
            let id = task.id.clone();
            if !p.after.is_empty() {
                let mut tasks = state.tasks.clone();
                for dep in &p.after {
                    if let Some(cycle) = super::would_cycle(&tasks, &id, dep) {
                        return Err(format!("dependency cycle: {}", cycle.join(" → ")));
                    }
                    let after = &mut tasks.get_mut(&id).expect("task exists").after;
                    if !after.contains(dep) {
                        after.push(dep.clone());
                    }
                }
                state.tasks = tasks;
            }
            let task = state.tasks.get_mut(&id).expect("task exists");
            if let Some(title) = &p.title {
                task.title = title.clone();
            }
            if p.description.is_some() {
                task.description = p.description.clone();
            }
            task.updated_at = e.at.clone();
        }
        Payload::TaskAssigned(p) => {
            let task = task_of(state, e)?;
            if task.status.is_closed() {
                return Err(format!("task {} is {}", task.id, task.status.as_str()));
            }
            if p.claim {
                allow(role, WORKERS, &e.actor, "claim tasks")?;
                if p.assignee != e.actor {
                    return Err(format!("'{}' cannot claim a task for '{}'", e.actor, p.assignee));
                }
                if let Some(holder) = &task.assignee {
                    return Err(format!("task {} is already assigned to {holder}", task.id));
                }
            } else {
                allow(role, LEADS, &e.actor, "assign tasks")?;
                let assignee = state.active_agent(&p.assignee).ok_or_else(|| format!("'{}' is not an active agent", p.assignee))?;
                if !WORKERS.contains(&assignee.role) {
                    return Err(format!("'{}' is {} and does not work tasks", p.assignee, assignee.role));
                }
            }
            let id = task.id.clone();
            let task = state.tasks.get_mut(&id).expect("task exists");
            if task.assignee.as_deref() != Some(p.assignee.as_str()) {
                task.status = TaskStatus::Assigned;
            }
            task.assignee = Some(p.assignee.clone());
            task.assigned_at.get_or_insert_with(|| e.at.clone());
            task.updated_at = e.at.clone();
        }
        Payload::TaskStatusChanged(p) => {
            let task = task_of(state, e)?;
            let is_assignee = task.assignee.as_deref() == Some(e.actor.as_str());
            match p.status {
                TaskStatus::InProgress => {
                    if !is_assignee {
                        return Err(format!("only the assignee may start task {} ({})", task.id, who(&task.assignee)));
                    }
                    if task.status != TaskStatus::Assigned {
                        return Err(format!("task {} is {}, not assigned", task.id, task.status.as_str()));
                    }
                    require_dependencies_done(state, task)?;
                }
                TaskStatus::Done => {
                    if !is_assignee && !LEADS.contains(&role) {
                        return Err(format!("only the assignee or a senior may finish task {} ({})", task.id, who(&task.assignee)));
                    }
                    if !matches!(task.status, TaskStatus::Assigned | TaskStatus::InProgress) {
                        return Err(format!("task {} is {}: only an assigned or started task can be done", task.id, task.status.as_str()));
                    }
                    require_dependencies_done(state, task)?;
                }
                TaskStatus::Cancelled => {
                    allow(role, LEADS, &e.actor, "cancel tasks")?;
                    if task.status.is_closed() {
                        return Err(format!("task {} is already {}", task.id, task.status.as_str()));
                    }
                }
                TaskStatus::Open | TaskStatus::Assigned => {
                    return Err(format!("a task cannot be set to {} directly: assign or claim it", p.status.as_str()));
                }
            }
            let id = task.id.clone();
            let task = state.tasks.get_mut(&id).expect("task exists");
            task.status = p.status;
            task.updated_at = e.at.clone();
            if p.status == TaskStatus::Done {
                task.done_at = Some(e.at.clone());
            }
        }
        Payload::ArtifactProduced(p) => {
            let task = task_of(state, e)?;
            if task.assignee.as_deref() != Some(e.actor.as_str()) && !LEADS.contains(&role) {
                return Err(format!("only the assignee or a senior may add artifacts to task {} ({})", task.id, who(&task.assignee)));
            }
            if task.status == TaskStatus::Cancelled {
                return Err(format!("task {} is cancelled", task.id));
            }
            if p.path.is_empty() || p.path.contains('/') || p.path == "." || p.path == ".." {
                return Err(format!("artifact name '{}' is not a plain file name", p.path));
            }
            if !v.files.iter().any(|(name, blob)| *name == p.path && *blob == p.blob) {
                return Err(format!("artifact content files/{} with blob {} is not in the event's tree", p.path, p.blob));
            }
            let id = task.id.clone();
            state.artifacts.push(Artifact {
                task: id.clone(),
                path: p.path.clone(),
                kind: p.kind.clone(),
                blob: p.blob.clone(),
                size: p.size,
                by: e.actor.clone(),
                at: e.at.clone(),
                event: v.commit.to_string(),
            });
            state.tasks.get_mut(&id).expect("task exists").updated_at = e.at.clone();
        }
        Payload::LogMerged(p) => {
            if p.merged.is_empty() || p.merged.iter().any(|m| !crate::event::is_hex_oid(m)) {
                return Err("LOG_MERGED must list the heads it merges".into());
            }
        }
        Payload::AgentConfigured(_) | Payload::RunStarted(_) | Payload::RunFinished(_) | Payload::RunRefused(_) => {
            applied = super::runs::apply(state, v, role)?;
        }
        Payload::PrOpened(_)
        | Payload::PrUpdated(_)
        | Payload::ReviewCommented(_)
        | Payload::TestRun(_)
        | Payload::MergeApproved(_)
        | Payload::MergeBlocked(_)
        | Payload::EvalReported(_)
        | Payload::HiringProposal(_)
        | Payload::FiringProposal(_)
        | Payload::DecisionRecorded(_)
        | Payload::BudgetUpdated(_) => {
            applied = super::gates::apply(state, v, role)?;
        }
    }
    if let (Payload::TaskCreated(_), Some(id)) = (&e.payload, &applied.created) {
        state.tasks.get_mut(id).expect("just created").spend.add(&e.cost);
    }
    finish(state, e);
    Ok(applied)
}

/// The task and project an envelope names must exist and agree, so spend lands where it
/// belongs.
fn check_envelope_scope(state: &State, e: &Event) -> Result<(), String> {
    if matches!(e.payload, Payload::TaskCreated(_)) {
        // Checked by its own rule: it names no task, and its project must exist.
        return Ok(());
    }
    match (&e.task, &e.project) {
        (Some(id), project) => {
            let task = state.tasks.get(id).ok_or_else(|| format!("no task '{id}'"))?;
            if *project != task.project {
                return Err(format!("event names project {project:?} but task {id} belongs to {:?}", task.project));
            }
        }
        (None, Some(project)) => {
            if !state.projects.contains_key(project) {
                return Err(format!("no project '{project}'"));
            }
        }
        (None, None) => {}
    }
    Ok(())
}

/// Bookkeeping common to every applied event: counts, clock, spend.
fn finish(state: &mut State, e: &Event) {
    state.events += 1;
    state.clock = state.clock.max(e.clock);
    state.spend.add(&e.cost);
    if let Some(agent) = state.agents.get_mut(&e.actor) {
        agent.events += 1;
        agent.spend.add(&e.cost);
    }
    if let Some(project) = e.project.as_ref().and_then(|p| state.projects.get_mut(p)) {
        project.spend.add(&e.cost);
    }
    if let Some(task) = e.task.as_ref().and_then(|t| state.tasks.get_mut(t)) {
        task.spend.add(&e.cost);
    }
    if let Payload::RunFinished(p) = &e.payload {
        if let Some(run) = state.runs.get_mut(&p.run) {
            run.spend.add(&e.cost);
        }
    }
}

pub(super) fn new_agent(id: &str, role: Role, key: &str, e: &Event, commit: &str) -> Agent {
    Agent {
        id: id.to_string(),
        role,
        public_key: key.to_string(),
        status: AgentStatus::Active,
        fired_at: None,
        joined_at: e.at.clone(),
        joined_by: commit.to_string(),
        spend: Spend::default(),
        events: 0,
        runtime: None,
    }
}

/// `t-` and the first seven hex digits of the commit, one more for each collision.
fn new_task_id(state: &State, commit: &str) -> String {
    new_id("t-", commit, |id| state.tasks.contains_key(id))
}

/// `<prefix>` and the first seven hex digits of the commit, one more while `taken`.
pub(super) fn new_id(prefix: &str, commit: &str, taken: impl Fn(&str) -> bool) -> String {
    (7..=commit.len()).map(|len| format!("{prefix}{}", &commit[..len])).find(|id| !taken(id)).unwrap_or_else(|| format!("{prefix}{commit}"))
}

pub(super) fn task_of<'s>(state: &'s State, e: &Event) -> Result<&'s Task, String> {
    let id = e.task.as_ref().ok_or_else(|| format!("{} must name its task", e.event_type()))?;
    let task = state.tasks.get(id).ok_or_else(|| format!("no task '{id}'"))?;
    if e.project != task.project {
        return Err(format!("event names project {:?} but task {id} belongs to {:?}", e.project, task.project));
    }
    Ok(task)
}

pub(super) fn allow(role: Role, allowed: &[Role], actor: &str, what: &str) -> Result<(), String> {
    if allowed.contains(&role) {
        return Ok(());
    }
    let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
    Err(format!("{role} '{actor}' may not {what} (that takes {})", names.join(" or ")))
}

fn check_dependencies(state: &State, after: &[String]) -> Result<(), String> {
    for (i, dep) in after.iter().enumerate() {
        if !state.tasks.contains_key(dep) {
            return Err(format!("dependency '{dep}' is not a task"));
        }
        if after[..i].contains(dep) {
            return Err(format!("dependency '{dep}' is listed twice"));
        }
    }
    Ok(())
}

fn require_dependencies_done(state: &State, task: &Task) -> Result<(), String> {
    let pending: Vec<&str> =
        task.after.iter().filter(|dep| state.tasks.get(*dep).is_none_or(|d| d.status != TaskStatus::Done)).map(String::as_str).collect();
    if pending.is_empty() {
        Ok(())
    } else {
        Err(format!("task {} waits for {} to be done", task.id, pending.join(", ")))
    }
}

fn who(assignee: &Option<String>) -> String {
    match assignee {
        Some(a) => format!("assigned to {a}"),
        None => "unassigned".into(),
    }
}

/// Agent ids, project names: lowercase letters, digits, `.`, `_`, `-`; a letter first.
pub fn check_id(what: &str, id: &str) -> Result<(), String> {
    let ok = id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("{what} '{id}' is not valid: use lowercase letters, digits, '.', '_' or '-', starting with a letter (at most 64)"))
    }
}

pub(super) fn check_text(what: &str, text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(format!("{what} is empty"));
    }
    if text.contains(['\n', '\r']) {
        return Err(format!("{what} must be one line"));
    }
    Ok(())
}

/// The key as the roster keeps it: type and data, no comment.
pub(super) fn normalize_key(key: &str) -> String {
    key.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

pub(super) fn check_key(key: &str) -> Result<(), String> {
    crate::event::ed25519_key_bytes(key).map(|_| ()).map_err(|why| format!("'{key}' is not a usable ssh-ed25519 public key: {why}"))
}
