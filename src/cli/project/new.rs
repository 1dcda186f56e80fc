use crate::ops::{org, Ctx};
use crate::Result;

use super::Out;

/// Create a project (Senior or CEO).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project's name (lowercase letters, digits, '.', '_', '-').
    pub name: String,
    #[arg(long)]
    pub description: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    let written = org::project_new(ctx, actor, &args.name, args.description.as_deref())?;
    out.written(args.json, &args.name, &written, &args.name)
}
