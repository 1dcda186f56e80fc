use std::path::PathBuf;

use crate::ops::{artifact, Ctx};
use crate::Result;

use super::Out;

/// Record a file as an artifact of a task (its assignee, or a Senior). The content is stored
/// in the event's commit under files/.
#[derive(Debug, clap::Args)]
pub struct Args {
    pub task: String,
    pub path: PathBuf,
    /// What it is: report, patch, log, …
    #[arg(long, default_value = "file")]
    pub kind: String,
    /// Name to store it under (default: the file's name).
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub cost: crate::cli::cost_args::CostArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    let written = artifact::add(ctx, actor, &args.task, &args.path, &args.kind, args.name.as_deref(), args.cost.cost()?)?;
    let id = written.commit.to_string();
    out.written(args.json, &id, &written, &id)
}
