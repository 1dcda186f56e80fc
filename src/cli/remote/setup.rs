use crate::ops::{sync, Ctx};
use crate::Result;

use super::Out;

/// Add refspecs so plain `git fetch` and `git push` carry refs/clutch/* too: fetched heads land
/// in refs/remotes/REMOTE/clutch/, never over the local log, and pushes never force (a push
/// refspec of `HEAD` keeps `git push` pushing the current branch as well).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(default_value = "origin")]
    pub remote: String,
    /// Print what was added as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &Args, out: &mut Out) -> Result<()> {
    let added = sync::setup_remote(ctx, &args.remote)?;
    if args.json {
        return out.json(&serde_json::json!({ "remote": args.remote, "added": added }));
    }
    if added.is_empty() {
        return out.line("Nothing changed.");
    }
    for line in added {
        out.line(line)?;
    }
    Ok(())
}
