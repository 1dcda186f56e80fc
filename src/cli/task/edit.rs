use crate::ops::task::{self, Edit};
use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// Change a task's title or description, or add dependencies (Senior or CEO). A dependency
/// that would close a cycle is refused.
#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Add a task that must be done first (repeatable).
    #[arg(long, value_name = "TASK")]
    pub after: Vec<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    let edit = Edit { title: args.title.as_deref(), description: args.description.as_deref(), after: &args.after };
    match task::edit(ctx, actor, &args.id, &edit)? {
        Some(written) => {
            let id = written.task.clone().unwrap_or_else(|| args.id.clone());
            out.written(args.json, &id, &written, &format!("{id} updated"))
        }
        None => out.unchanged(args.json, &args.id),
    }
}
