use crate::cli::cost_args::CostArgs;
use crate::ops::{pr, Ctx};
use crate::Result;

use super::Out;

/// Record the new head of a PR's branch. Approvals of earlier heads no longer count.
#[derive(Debug, clap::Args)]
pub struct Args {
    pub pr: String,
    #[command(flatten)]
    pub cost: CostArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    match pr::update(ctx, actor, &args.pr, args.cost.cost()?)? {
        Some(written) => {
            let id = match &written.applied.created {
                Some(id) => id.clone(),
                None => args.pr.clone(),
            };
            out.written(args.json, &id, &written, &format!("{id} updated to a new head"))
        }
        None => out.unchanged(args.json, &args.pr),
    }
}
