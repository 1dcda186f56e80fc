use crate::ops::task::{self, NewTask};
use crate::ops::Ctx;
use crate::Result;

use super::Out;

/// Create a task (Senior or CEO). Prints the new task's id.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One line saying what is to be done.
    pub title: String,
    /// The project it belongs to.
    #[arg(long)]
    pub project: Option<String>,
    /// A task that must be done first (repeatable).
    #[arg(long, value_name = "TASK")]
    pub after: Vec<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Print {"id", "event"} as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    let new =
        NewTask { title: &args.title, project: args.project.as_deref(), after: &args.after, description: args.description.as_deref() };
    let written = task::create(ctx, actor, &new)?;
    let id = written.applied.created.clone().unwrap_or_default();
    out.written(args.json, &id, &written, &id)
}
