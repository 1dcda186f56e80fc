use crate::ops::Ctx;
use crate::{Error, Result};

use super::Out;

/// Show one task: status, assignee, dependencies, artifacts, spend.
#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let loaded = ctx.load()?;
    let state = &loaded.state;
    let task = state.find_task(&args.id).map_err(|why| Error::user(why).hint("see the tasks with: git clutch task list"))?;
    let artifacts: Vec<_> = state.artifacts_of(&task.id).collect();
    let ready = state.is_ready(task);
    if args.json {
        let mut value = serde_json::to_value(task).map_err(|err| Error::internal(err.to_string()))?;
        value["ready"] = serde_json::json!(ready);
        value["artifacts"] = serde_json::to_value(&artifacts).map_err(|err| Error::internal(err.to_string()))?;
        return out.json(&value);
    }
    let deps: Vec<String> =
        task.after.iter().map(|d| format!("{d} ({})", state.tasks.get(d).map(|t| t.status.as_str()).unwrap_or("?"))).collect();
    let mut rows = vec![
        vec!["task".into(), task.id.clone()],
        vec!["title".into(), task.title.clone()],
        vec!["status".into(), format!("{}{}", task.status.as_str(), if ready { " (ready)" } else { "" })],
        vec!["assignee".into(), task.assignee.clone().unwrap_or_else(|| "-".into())],
        vec!["project".into(), task.project.clone().unwrap_or_else(|| "-".into())],
        vec!["after".into(), if deps.is_empty() { "-".into() } else { deps.join(", ") }],
        vec!["created".into(), format!("{} by {} in {}", task.created_at, task.created_by, &task.event[..10])],
        vec!["updated".into(), task.updated_at.clone()],
    ];
    if let Some(description) = &task.description {
        rows.push(vec!["description".into(), description.clone()]);
    }
    for artifact in artifacts {
        rows.push(vec![
            "artifact".into(),
            format!("{} ({}, {} bytes, blob {})", artifact.path, artifact.kind, artifact.size, &artifact.blob[..10]),
        ]);
    }
    out.table(&rows)
}
