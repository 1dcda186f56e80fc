use std::path::PathBuf;

use crate::ops::{apply, Ctx};
use crate::{Error, Result};

use super::Out;

/// Make the org match a declared file: agents (role, key, runtime, settings), projects, policy,
/// budgets. Records only what differs and prints each change; checks the whole file first, so
/// a change it cannot make (a role or key change, a fired agent) applies nothing.
///
/// ```toml
/// [agents.sam]
/// role = "senior"
/// runtime = "in-process"
/// settings = { program = "reviewer" }
///
/// [projects.parser]
/// description = "A small parser"
///
/// [policy]
/// require_tests = true
///
/// [budgets]
/// org = { usd = 50.0, tokens = 5000000 }
/// ```
#[derive(Debug, clap::Args)]
pub struct Args {
    pub file: PathBuf,
    /// Print what would change, record nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the changes as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    let text = std::fs::read_to_string(&args.file).map_err(|err| Error::user(format!("cannot read {}: {err}", args.file.display())))?;
    let file = apply::parse(&text)?;
    let state = ctx.load()?.state;
    let changes = apply::plan(&state, &file, actor)?;
    if !args.dry_run {
        apply::apply(ctx, actor, &file, &changes)?;
    }
    if args.json {
        return out.json(&serde_json::json!({ "applied": !args.dry_run, "changes": changes }));
    }
    if changes.is_empty() {
        return out.line("Nothing changed.");
    }
    for change in &changes {
        out.line(change.to_string())?;
    }
    Ok(())
}
