use crate::ops::pr::{self, Merged};
use crate::ops::Ctx;
use crate::{Error, Result};

use super::Out;

/// Merge a PR through the gate (Senior or CEO). When the gate holds: records MERGE_APPROVED
/// with the evaluated gate and moves the base branch to a merge commit signed by the merger.
/// Otherwise records MERGE_BLOCKED with every unmet condition, moves nothing, and exits 1.
#[derive(Debug, clap::Args)]
pub struct Args {
    pub pr: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    match pr::merge(ctx, actor, &args.pr)? {
        Merged::Approved { written, result, base, worktree_updated } => {
            if args.json {
                out.json(&serde_json::json!({
                    "id": result.to_string(),
                    "event": written.commit.to_string(),
                    "merged": true,
                    "base": base,
                    "result": result.to_string(),
                }))
            } else {
                out.line(result.to_string())?;
                let note = if worktree_updated { " (work tree updated)" } else { "" };
                eprintln!("{} merged: {base} is now at {}{note}", args.pr, &result.to_string()[..10]);
                Ok(())
            }
        }
        Merged::Blocked { written, gate } => {
            if args.json {
                out.json(&serde_json::json!({ "id": args.pr, "event": written.commit.to_string(), "merged": false, "unmet": gate.unmet }))?;
            }
            Err(Error::user(format!("merge blocked: {}", gate.unmet.join("; ")))
                .hint(format!("MERGE_BLOCKED recorded in {}", written.commit)))
        }
    }
}
