use crate::ops::{task, Ctx};
use crate::Result;

use super::Out;

/// Take an unassigned task for yourself. Atomic: of two concurrent claims exactly one wins;
/// the other fails with exit code 3.
#[derive(Debug, clap::Args)]
pub struct Args {
    pub id: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    let written = task::claim(ctx, actor, &args.id)?;
    match written {
        Some(written) => {
            let id = written.task.clone().unwrap_or_else(|| args.id.clone());
            out.written(args.json, &id, &written, &format!("{id} claimed by {actor}"))
        }
        None => out.unchanged(args.json, &args.id),
    }
}
