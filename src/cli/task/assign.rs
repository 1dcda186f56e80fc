use crate::ops::{task, Ctx};
use crate::Result;

use super::Out;

/// Assign a task to an agent (Senior or CEO).
#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
    pub agent: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    let written = task::assign(ctx, actor, &args.id, &args.agent)?;
    let id = written.task.clone().unwrap_or_else(|| args.id.clone());
    out.written(args.json, &id, &written, &format!("{id} assigned to {}", args.agent))
}
