use crate::event::TaskStatus;
use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// List tasks, oldest first.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only tasks that can start now: not started, not closed, dependencies done.
    #[arg(long)]
    pub ready: bool,
    /// Only tasks in this status: open, assigned, in_progress, done, cancelled.
    #[arg(long)]
    pub status: Option<TaskStatus>,
    /// Only tasks assigned to this agent.
    #[arg(long)]
    pub assignee: Option<String>,
    /// Only tasks of this project.
    #[arg(long)]
    pub project: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let loaded = ctx.load()?;
    let state = &loaded.state;
    let mut tasks: Vec<_> = state
        .tasks
        .values()
        .filter(|t| !args.ready || state.is_ready(t))
        .filter(|t| args.status.is_none_or(|s| t.status == s))
        .filter(|t| args.assignee.as_ref().is_none_or(|a| t.assignee.as_ref() == Some(a)))
        .filter(|t| args.project.as_ref().is_none_or(|p| t.project.as_ref() == Some(p)))
        .collect();
    tasks.sort_by_key(|t| t.seq);
    if args.json {
        return out.json(&tasks);
    }
    let mut rows = vec![vec!["TASK".into(), "STATUS".into(), "ASSIGNEE".into(), "PROJECT".into(), "AFTER".into(), "TITLE".into()]];
    for task in tasks {
        rows.push(vec![
            task.id.clone(),
            task.status.as_str().to_string(),
            task.assignee.clone().unwrap_or_else(|| "-".into()),
            task.project.clone().unwrap_or_else(|| "-".into()),
            if task.after.is_empty() { "-".into() } else { task.after.join(",") },
            task.title.clone(),
        ]);
    }
    out.table(&rows)
}
