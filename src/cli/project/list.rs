use crate::event::TaskStatus;
use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// List projects with their task counts.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let loaded = ctx.load()?;
    let state = &loaded.state;
    if args.json {
        return out.json(&state.projects.values().collect::<Vec<_>>());
    }
    let mut rows = vec![vec!["PROJECT".into(), "TASKS".into(), "DONE".into(), "CREATED".into(), "DESCRIPTION".into()]];
    for project in state.projects.values() {
        let tasks: Vec<_> = state.tasks.values().filter(|t| t.project.as_deref() == Some(project.name.as_str())).collect();
        let done = tasks.iter().filter(|t| t.status == TaskStatus::Done).count();
        rows.push(vec![
            project.name.clone(),
            tasks.len().to_string(),
            done.to_string(),
            project.created_at.clone(),
            project.description.clone().unwrap_or_default(),
        ]);
    }
    out.table(&rows)
}
