use crate::cli::cost_args::CostArgs;
use crate::event::Verdict;
use crate::ops::{pr, Ctx};
use crate::Result;

use super::Out;

/// Review a PR's current head: approve, request changes, or comment. Nobody approves their own
/// PR; a Junior's verdict is recorded as a comment.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("verdict").required(true).args(["approve", "request_changes", "comment"])))]
pub struct Args {
    pub pr: String,
    #[arg(long)]
    pub approve: bool,
    #[arg(long)]
    pub request_changes: bool,
    #[arg(long)]
    pub comment: bool,
    /// What the review says.
    #[arg(short, long, default_value = "")]
    pub message: String,
    #[command(flatten)]
    pub cost: CostArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, actor: &str, args: &Args, out: &mut Out) -> Result<()> {
    let verdict = if args.approve {
        Verdict::Approve
    } else if args.request_changes {
        Verdict::RequestChanges
    } else {
        Verdict::Comment
    };
    let reviewed = pr::review(ctx, actor, &args.pr, verdict, &args.message, args.cost.cost()?)?;
    if reviewed.downgraded {
        eprintln!("note: a junior's verdict does not count toward the merge gate; recorded as a comment");
    }
    let id = reviewed.written.task.clone().unwrap_or_default();
    let what = match (reviewed.downgraded, verdict) {
        (true, _) | (false, Verdict::Comment) => "comment",
        (false, Verdict::Approve) => "approval",
        (false, Verdict::RequestChanges) => "request for changes",
    };
    out.written(args.json, &reviewed.written.commit.to_string(), &reviewed.written, &format!("{what} recorded on {} ({id})", args.pr))
}
