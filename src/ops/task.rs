//! Tasks: create, edit, assign, claim, start, finish, cancel.

use crate::event::{Payload, TaskAssigned, TaskCreated, TaskStatus, TaskStatusChanged, TaskUpdated};
use crate::state::{State, Task};
use crate::{Error, Result};

use super::{transact, Ctx, Draft, Written};

fn find<'s>(state: &'s State, id: &str) -> Result<&'s Task> {
    state.find_task(id).map_err(|why| Error::user(why).hint("see the tasks with: git clutch task list"))
}

fn resolve_all(state: &State, ids: &[String]) -> Result<Vec<String>> {
    ids.iter().map(|id| find(state, id).map(|t| t.id.clone()).map_err(|err| err.context(format!("dependency '{id}'")))).collect()
}

fn check_line(what: &str, text: &str) -> Result<()> {
    if text.trim().is_empty() {
        return Err(Error::user(format!("the {what} is empty")));
    }
    if text.contains(['\n', '\r']) {
        return Err(Error::user(format!("the {what} must be one line")).hint("put details in --description"));
    }
    Ok(())
}

fn one(mut written: Vec<Written>) -> Written {
    written.remove(0)
}

pub struct NewTask<'a> {
    pub title: &'a str,
    pub project: Option<&'a str>,
    pub after: &'a [String],
    pub description: Option<&'a str>,
}

pub fn create(ctx: &Ctx, actor: &str, new: &NewTask<'_>) -> Result<Written> {
    check_line("title", new.title)?;
    let (written, _) = transact(ctx, actor, |state| {
        if let Some(project) = new.project {
            if !state.projects.contains_key(project) {
                return Err(
                    Error::user(format!("no project '{project}'")).hint(format!("create it with: git clutch project new {project}"))
                );
            }
        }
        let after = resolve_all(state, new.after)?;
        let mut draft = Draft::new(Payload::TaskCreated(TaskCreated {
            title: new.title.trim().to_string(),
            description: new.description.map(str::to_string),
            after,
        }));
        draft.project = new.project.map(str::to_string);
        Ok(vec![draft])
    })?;
    Ok(one(written))
}

pub struct Edit<'a> {
    pub title: Option<&'a str>,
    pub description: Option<&'a str>,
    pub after: &'a [String],
}

pub fn edit(ctx: &Ctx, actor: &str, id: &str, edit: &Edit<'_>) -> Result<Option<Written>> {
    if let Some(title) = edit.title {
        check_line("title", title)?;
    }
    let (written, _) = transact(ctx, actor, |state| {
        let task = find(state, id)?;
        let after: Vec<String> = resolve_all(state, edit.after)?.into_iter().filter(|d| !task.after.contains(d)).collect();
        if edit.title.is_none() && edit.description.is_none() && after.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![Draft::new(Payload::TaskUpdated(TaskUpdated {
            title: edit.title.map(|t| t.trim().to_string()),
            description: edit.description.map(str::to_string),
            after,
        }))
        .task(task)])
    })?;
    Ok(written.into_iter().next())
}

pub fn assign(ctx: &Ctx, actor: &str, id: &str, assignee: &str) -> Result<Written> {
    let (written, _) = transact(ctx, actor, |state| {
        let task = find(state, id)?;
        if state.active_agent(assignee).is_none() {
            return Err(Error::user(format!("'{assignee}' is not an active agent")).hint("see the roster with: git clutch agent list"));
        }
        Ok(vec![Draft::new(Payload::TaskAssigned(TaskAssigned { assignee: assignee.to_string(), claim: false })).task(task)])
    })?;
    Ok(one(written))
}

/// Take an unassigned task. Of two concurrent claims, the one that moves the log first wins;
/// the other re-reads, finds the task taken, and fails with a conflict.
pub fn claim(ctx: &Ctx, actor: &str, id: &str) -> Result<Option<Written>> {
    let (written, _) = transact(ctx, actor, |state| {
        let task = find(state, id)?;
        match task.assignee.as_deref() {
            Some(holder) if holder == actor => Ok(Vec::new()),
            Some(holder) => Err(Error::conflict(format!("task {} is already assigned to {holder}", task.id))),
            None => Ok(vec![Draft::new(Payload::TaskAssigned(TaskAssigned { assignee: actor.to_string(), claim: true })).task(task)]),
        }
    })?;
    Ok(written.into_iter().next())
}

pub fn set_status(
    ctx: &Ctx,
    actor: &str,
    id: &str,
    status: TaskStatus,
    reason: Option<&str>,
    cost: crate::event::Cost,
) -> Result<Option<Written>> {
    let (written, _) = transact(ctx, actor, |state| {
        let task = find(state, id)?;
        if task.status == status {
            return Ok(Vec::new());
        }
        let mut draft = Draft::new(Payload::TaskStatusChanged(TaskStatusChanged { status, reason: reason.map(str::to_string) })).task(task);
        draft.cost = cost.clone();
        Ok(vec![draft])
    })?;
    Ok(written.into_iter().next())
}
