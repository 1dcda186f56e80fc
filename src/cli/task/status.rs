use crate::event::TaskStatus;
use crate::ops::{task, Ctx};
use crate::Result;

use super::Out;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
    /// Why (kept in the event).
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub cost: crate::cli::cost_args::CostArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, status: TaskStatus, args: &Args, out: &mut Out) -> Result<()> {
    let written = task::set_status(ctx, actor, &args.id, status, args.reason.as_deref(), args.cost.cost()?)?;
    match written {
        Some(written) => {
            let id = written.task.clone().unwrap_or_else(|| args.id.clone());
            out.written(args.json, &id, &written, &format!("{id} {}", status.as_str()))
        }
        None => out.unchanged(args.json, &args.id),
    }
}
