use crate::cli::cost_args::CostArgs;
use crate::ops::{pr, Ctx};
use crate::Result;

use super::Out;

/// Open a PR for a task: records PR_OPENED with the base branch and the head commit. Prints the
/// new PR id.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task the PR delivers.
    #[arg(long)]
    pub task: String,
    /// The branch with the work (default: the current branch).
    #[arg(long, value_name = "BRANCH")]
    pub head: Option<String>,
    /// The branch to merge into.
    #[arg(long, default_value = "main")]
    pub base: String,
    /// Title (default: the task's title).
    #[arg(long)]
    pub title: Option<String>,
    #[command(flatten)]
    pub cost: CostArgs,
    /// Print {"id", "event"} as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    let open = pr::Open {
        task: &args.task,
        head_branch: args.head.as_deref(),
        base: &args.base,
        title: args.title.as_deref(),
        cost: args.cost.cost()?,
    };
    let written = pr::open(ctx, actor, &open)?;
    let id = written.applied.created.clone().unwrap_or_default();
    out.written(args.json, &id, &written, &id)
}
